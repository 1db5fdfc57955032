"""OCR + reading + correction accuracy per questionnaire layout, on scanned questionnaires of real waves.

For each style of `questionnaire.styles.STYLES` and each wave (default W26 W29 W54 from
../shared/data/atp), the renderer writes the wave's first questions in that layout, the page
images are degraded like a photocopy, tesseract reads them, the reader (`reader.py`, anchored
on the codebook; `--reader layout` for the old layout segmenter) finds the questions and the
codebook backend corrects them. Truth = the codebook wording and options. Printed per style:
wording CER (character edits / truth length), options exact-match rate (of the questions
found), the share of questions found, codebook questions claimed though not printed, and the
share whose printed percentages agree with the weighted topline; the raw OCR (`none`) is the
"before" line.

Leave-one-style-out: the reader's settings are chosen from a small grid on all styles but one
and scored on the one left out, so each style is also measured as a layout the settings were
not tuned on. The last line is the worst held-out style.

    .venv/bin/python benchmarks/ocr_accuracy.py [--styles matrix trend] [--waves W26] [--max-questions 20]
        [--work-dir DIR]   # keep the scans' OCR: a rerun (e.g. after changing the reader) only reads
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from opinionbench.config import CorrectionParams  # noqa: E402
from opinionbench.questionnaire.correct import make_backend  # noqa: E402
from opinionbench.questionnaire.ocr import OcrSettings, ocr_pdf  # noqa: E402
from opinionbench.questionnaire.pipeline import correct_blocks, wave_hints, wave_toplines  # noqa: E402
from opinionbench.questionnaire.reader import ReaderSettings, read_blocks  # noqa: E402
from opinionbench.questionnaire.render import render_pdf, scan_pdf, wave_render_questions  # noqa: E402
from opinionbench.questionnaire.segment import segment  # noqa: E402
from opinionbench.questionnaire.styles import STYLES  # noqa: E402
from opinionbench.survey import load_wave  # noqa: E402

ATP = (REPO / ".." / "shared" / "data" / "atp").resolve()
GRID = {"anchor_min_ratio": [75.0, 80.0, 85.0], "option_min_ratio": [60.0, 70.0, 80.0]}


def score(frame: pd.DataFrame, truth: dict[str, tuple[str, list[str]]]) -> dict[str, int]:
    edits = chars = exact = 0
    found = set(frame["qcode"]) & set(truth)
    wrong = len(set(frame["qcode"]) - set(truth))  # codebook questions "found" that were not printed
    for row in frame.drop_duplicates("qcode").itertuples():
        if row.qcode not in truth:
            continue
        t_question, t_options = truth[row.qcode]
        edits += Levenshtein.distance(row.question, t_question)
        chars += len(t_question)
        exact += list(row.options) == list(t_options)
    toplines = int((frame.drop_duplicates("qcode")["topline_ok"] == True).sum())  # noqa: E712 (None = unchecked)
    return {"edits": edits, "chars": chars, "exact": exact, "found": len(found), "total": len(truth), "wrong": wrong,
            "toplines": toplines}


def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b[k] for k in b}


def rates(s: dict[str, int]) -> tuple[float, float, float]:
    return (s["edits"] / max(s["chars"], 1), s["exact"] / max(s["found"], 1), s["found"] / max(s["total"], 1))


def line(s: dict[str, int]) -> str:
    cer, exact, found = rates(s)
    return (f"wording_cer={cer:.4f} options_exact={exact:.3f} found={found:.3f} not_printed_found={s['wrong']} "
            f"toplines_ok={s['toplines'] / max(s['found'], 1):.3f}")


def meets(s: dict[str, int]) -> bool:
    cer, exact, found = rates(s)
    return found >= 0.98 and exact >= 0.98 and cer <= 0.01 and s["wrong"] == 0


def utility(s: dict[str, int]) -> float:
    cer, exact, found = rates(s)
    return found + exact - 10 * cer - s["wrong"] / max(s["total"], 1)


class Case:
    """One wave in one style: its OCR'd words (computed once), codebook hints and truth."""

    def __init__(self, style: str, wave_id: str, args: argparse.Namespace, work: Path) -> None:
        wave = load_wave(ATP / f"{wave_id}.sav")
        questions = wave_render_questions(wave)[: args.max_questions]
        table = wave.questions.set_index("qcode")
        self.truth = {q.qcode: (table.loc[q.qcode, "question"], list(table.loc[q.qcode, "options"]))
                      for q in questions}
        self.hints = wave_hints(wave)  # the whole codebook: questions not printed must not be "found"
        self.toplines = wave_toplines(wave)
        self.wave_id, self.style = wave_id, style
        seed = args.seed + zlib.crc32(f"{style}{wave_id}".encode()) % 1000
        clean, scanned = work / f"{style}_{wave_id}.clean.pdf", work / f"{style}_{wave_id}.pdf"
        self.source = str(scanned)
        cached = work / f"{style}_{wave_id}_q{args.max_questions}_s{seed}_dpi{args.dpi}.words.parquet"
        if cached.exists():  # --work-dir: the OCR of an earlier run (rendering and scanning are seeded)
            self.words = pd.read_parquet(cached)
            self.pages = int(self.words["page"].max())
            return
        render_pdf(questions, clean, wave=wave_id, title=wave.topic, dates=(wave.wave_start, wave.wave_end),
                   n=len(wave.weights), style=style, seed=seed)
        self.pages = scan_pdf(clean, scanned, dpi=args.dpi, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.words = ocr_pdf(scanned, settings=OcrSettings(dpi=args.dpi), workers=args.workers,
                                 cache_dir=work / "ocr", progress=False)
        self.words.to_parquet(cached)

    def frame(self, reader: str, settings: ReaderSettings, backend: str) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if reader == "layout":
                blocks = segment(self.words, source=self.source)
            else:
                blocks = read_blocks(self.words, self.hints, self.toplines, settings=settings)
        params = CorrectionParams(backend=backend)
        return correct_blocks(blocks, wave_id=self.wave_id, backend=make_backend(backend, params), params=params,
                              hints=self.hints, toplines=self.toplines, progress=False)

    def score(self, reader: str, settings: ReaderSettings, backend: str = "codebook") -> dict[str, int]:
        return score(self.frame(reader, settings, backend), self.truth)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    ap.add_argument("--waves", nargs="+", default=["W26", "W29", "W54"])
    ap.add_argument("--max-questions", type=int, default=20, help="questions rendered per wave (keeps it minutes)")
    ap.add_argument("--reader", choices=["anchored", "layout"], default="anchored")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="scan degradation seed (rotation, noise)")
    ap.add_argument("--no-holdout", action="store_true", help="skip the leave-one-style-out runs")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="keep the scanned PDFs and their OCR here (a rerun reads them back)")
    args = ap.parse_args()
    if not ATP.is_dir():
        print(f"skipped: real ATP waves not found at {ATP}")
        return 0
    start = time.perf_counter()
    default = ReaderSettings()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cases = {s: [Case(s, w, args, work) for w in args.waves] for s in args.styles}
        pages = sum(c.pages for cs in cases.values() for c in cs)
        print(f"{len(args.styles)} styles x {len(args.waves)} waves: {pages} scanned pages OCR'd "
              f"in {time.perf_counter() - start:.0f}s ({args.reader} reader)", flush=True)
        per_style: dict[str, dict[str, int]] = {}
        for style, cs in cases.items():
            before = after = {}
            for c in cs:
                before = add(before, c.score(args.reader, default, "none"))
                s = c.score(args.reader, default)
                after = add(after, s)
                missing = sorted(set(c.truth) - set(c.frame(args.reader, default, "codebook")["qcode"]))
                if missing:
                    print(f"  {style} {c.wave_id}: not found {missing}")
            per_style[style] = after
            print(f"style={style:<11} before (raw OCR) {line(before)}")
            print(f"style={style:<11} after           {line(after)}{'' if meets(after) else '  BELOW TARGET'}",
                  flush=True)
        if args.no_holdout or len(cases) < 2:
            worst = min(per_style, key=lambda s: utility(per_style[s]))
            print(f"worst style={worst} {line(per_style[worst])}")
            return 0
        grid = [replace(default, **dict(zip(GRID, values))) for values in itertools.product(*GRID.values())]
        table = {(style, i): _sum([c.score(args.reader, g) for c in cs])
                 for style, cs in cases.items() for i, g in enumerate(grid)}
        held_out: dict[str, dict[str, int]] = {}
        for style in cases:
            others = [s for s in cases if s != style]
            pick = max(range(len(grid)), key=lambda i: sum(utility(table[(s, i)]) for s in others))
            held_out[style] = table[(style, pick)]
            g = grid[pick]
            print(f"held-out style={style:<11} settings(anchor={g.anchor_min_ratio:.0f}, "
                  f"option={g.option_min_ratio:.0f}) {line(held_out[style])}"
                  f"{'' if meets(held_out[style]) else '  BELOW TARGET'}", flush=True)
        print(f"{time.perf_counter() - start:.0f}s in all")
        worst = min(held_out, key=lambda s: utility(held_out[s]))
        print(f"worst held-out style={worst} {line(held_out[worst])}")
    return 0


def _sum(scores: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in scores:
        total = add(total, s)
    return total


if __name__ == "__main__":
    sys.exit(main())
