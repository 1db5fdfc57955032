"""Validating a build vs building it, side by side in one run (the validation must stay cheap).

Target: validate_over_build <= 1.0 on the real waves: the GX suites, helper columns and Data
Docs of every question and (question, group) cell cost no more than building them did. Also
prints the vectorised probability checks against a per-row Python loop (derive_speedup).
Usage: python benchmarks/validate.py [--atp-dir ../shared/data/atp] [--workers 2] [--waves N]
       (without ../shared it runs on the embedded sample)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.survey.build import build_waves
from opinionbench.validation import derive
from opinionbench.validation.exclusions import apply_exclusions, load_rules
from opinionbench.validation.runner import run_suites

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"min_word_share": 0.5, "max_debris_share": 0.05, "max_options": 30, "probs_tolerance": 1e-6,
          "min_n_eff": 30.0, "topline_tolerance": 1.0, "max_verbalized_failure_rate": 0.5}


def _loop_probs(frame: pd.DataFrame) -> list[tuple[float, float, float, int]]:
    """The obvious per-row version of derive's probability columns (|sum-1|, min, max, length)."""
    out = []
    for probs in frame["probs"]:
        values = np.asarray(list(probs), dtype=float)
        if len(values) == 0:
            out.append((np.nan, np.nan, np.nan, 0))
            continue
        total = abs(float(values.sum()) - 1.0) if np.isfinite(values).all() else np.inf
        out.append((total, float(np.nanmin(values)), float(np.nanmax(values)), len(values)))
    return out


def main() -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atp-dir", type=Path, default=REPO / ".." / "shared" / "data" / "atp")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--waves", type=int, default=0, help="only the first N waves (0 = all)")
    args = parser.parse_args()
    files = sorted(args.atp_dir.glob("W*.sav")) or [REPO / "data" / "sample" / "W900.sav"]
    if args.waves:
        files = files[: args.waves]

    t0 = time.perf_counter()
    built = build_waves(files, workers=args.workers)
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    questions, cells, exclusions = apply_exclusions(built.questions, built.distributions,
                                                    load_rules(REPO / "expectations" / "exclusions.yaml"), 30.0, 30)
    frames = {"questions": derive.question_checks(questions, cells),
              "distributions": derive.distribution_checks(cells, questions),
              "provenance": derive.provenance_checks(questions, REPO / "data" / "cache" / "llm")}
    with tempfile.TemporaryDirectory() as tmp:
        report = run_suites(frames, REPO / "expectations", PARAMS, Path(tmp) / "docs")
    validate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    derive._probs_columns(cells, None)
    vector_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _loop_probs(cells)
    loop_s = time.perf_counter() - t0

    print(f"waves={len(files)} questions={len(questions)} cells={len(cells)} "
          f"excluded={len(exclusions.questions)} success={report.success}")
    print(f"build_s={build_s:.2f} validate_s={validate_s:.2f} probs_vectorised_s={vector_s:.2f} probs_loop_s={loop_s:.2f}")
    print(f"derive_speedup={loop_s / vector_s:.2f}")
    print(f"validate_over_build={validate_s / build_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
