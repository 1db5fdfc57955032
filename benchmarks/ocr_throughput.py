"""OCR throughput with one worker and with two, measured side by side in one run.

A scanned questionnaire (the sample wave's pages, repeated to --pages pages) is OCR'd with a
fresh page cache each time, alternating 1 and 2 workers for --repeats rounds; each round gives
a side-by-side ratio and the median ratio is reported (a shared machine is noisy, and the two
timings of one round see the same load). Last line: `parallel_speedup=X.XX` (target ≥ 1.8).

    .venv/bin/python benchmarks/ocr_throughput.py [--pages 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from opinionbench.questionnaire.ocr import OcrSettings, ocr_pdf  # noqa: E402

SAMPLE_PDF = REPO / "data" / "sample" / "W900_questionnaire.pdf"


def build_pdf(pages: int, target: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    source = PdfReader(str(SAMPLE_PDF)).pages
    writer = PdfWriter()
    for i in range(pages):
        writer.add_page(source[i % len(source)])
    with open(target, "wb") as fh:
        writer.write(fh)


def timed(pdf: Path, workers: int, dpi: int) -> float:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        ocr_pdf(pdf, settings=OcrSettings(dpi=dpi), workers=workers, cache_dir=Path(cache), progress=False)
        return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dpi", type=int, default=200)
    args = ap.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"
    load = os.getloadavg()[0]
    print(f"cores={os.cpu_count()} load_average_1min={load:.2f} (a busy machine caps the speedup: "
          f"2 workers need 2 idle cores)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "pages.pdf"
        build_pdf(args.pages, pdf)
        ratios, rates = [], {1: [], 2: []}
        for r in range(args.repeats):
            seconds = {}
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate the order against drifting load
                seconds[workers] = timed(pdf, workers, args.dpi)
                rates[workers].append(args.pages / seconds[workers])
                print(f"round {r + 1}: workers={workers} {args.pages} pages in {seconds[workers]:.2f}s "
                      f"({args.pages / seconds[workers]:.2f} pages/s)", flush=True)
            ratios.append(seconds[1] / seconds[2])
            print(f"round {r + 1}: speedup {ratios[-1]:.2f}", flush=True)
    print(f"pages_per_s_1_worker={statistics.median(rates[1]):.2f} "
          f"pages_per_s_2_workers={statistics.median(rates[2]):.2f} (medians)")
    print(f"parallel_speedup={statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
