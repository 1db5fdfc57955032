"""Build all shared ATP waves vs simply reading every .sav once, side by side in one run.

Target: build_over_read <= 1.5, i.e. codebook extraction, harmonisation and weighting of every
(question, group) cell cost at most half again the time of reading the files. The build uses
both cores (`--workers`); the read baseline is one plain `pyreadstat.read_sav` per file.
Usage: python benchmarks/build.py [--atp-dir ../shared/data/atp] [--workers 2] [--waves N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyreadstat

from opinionbench.survey.build import build_waves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atp-dir", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "atp")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--waves", type=int, default=0, help="only the first N waves (0 = all)")
    args = parser.parse_args()
    files = sorted(args.atp_dir.glob("W*.sav"))
    if args.waves:
        files = files[: args.waves]
    if not files:
        print(f"no W*.sav under {args.atp_dir}: the real data (../shared) is needed for this benchmark")
        return 1

    t0 = time.perf_counter()
    for f in files:
        pyreadstat.read_sav(str(f))
    read_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = build_waves(files, workers=args.workers)
    build_s = time.perf_counter() - t0

    report = result.report()
    print(f"waves={len(files)} built={report['waves_built']} failed={len(report['waves_failed'])} "
          f"questions={report['questions']} cells={report['cells']}")
    print(f"read_all_s={read_s:.2f} build_all_s={build_s:.2f} (workers={args.workers})")
    print(f"build_over_read={build_s / read_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
