"""`make-sample`: regenerate the committed synthetic wave (deterministic; for maintainers)."""

from __future__ import annotations

import argparse

from pathlib import Path

from opinionbench.sample import generate_sample

SAMPLE_DIR = Path("data/sample")


def run(args: argparse.Namespace) -> int:
    print(f"wrote {generate_sample(SAMPLE_DIR)}")
    return 0
