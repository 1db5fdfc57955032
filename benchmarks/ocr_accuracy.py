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

Random layouts (`questionnaire.random_style`): `--random N` layouts drawn from seeds
`--random-start`.. (each a window of `--random-questions` consecutive questions of one of
`--random-waves`, scored against that wave's whole codebook), overall and broken down by every
generator dimension's value, so a weak dimension shows. The seed range EVAL_SEEDS (900300-900399)
is RESERVED for evaluation: it is the default and was never looked at while the reader was
developed or its settings chosen; development uses DEV_SEEDS (1000-1999, `--random-start 1000`).
SPENT ranges (each scored once as the evaluation, then the reader was changed after seeing its
score, so it is never used to report again; a spent range may serve as development data):
900000-900099 (found 0.936), 900100-900199 (found 0.973, options exact 0.968, wording CER 0.0119,
1 unprinted question claimed), 900200-900299 (found 0.996, options exact 0.983, CER 0.0028, 2
unprinted questions claimed: siblings told apart only by short words). A reader changed after
seeing the score of 900300-900399 is evaluated on a fresh range (`--random-start 900400`).

    .venv/bin/python benchmarks/ocr_accuracy.py [--styles matrix trend] [--waves W26] [--max-questions 20]
        [--work-dir DIR]   # keep the scans' OCR: a rerun (e.g. after changing the reader) only reads
        [--random 100] [--random-start 900000] [--no-styles]
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
from opinionbench.questionnaire.random_style import DIMENSIONS, draw_style  # noqa: E402
from opinionbench.questionnaire.random_style import keywords as random_keywords  # noqa: E402
from opinionbench.questionnaire.render import render_pdf, scan_pdf, wave_render_questions  # noqa: E402
from opinionbench.questionnaire.segment import segment  # noqa: E402
from opinionbench.questionnaire.styles import STYLES  # noqa: E402
from opinionbench.survey import load_wave  # noqa: E402

ATP = (REPO / ".." / "shared" / "data" / "atp").resolve()
GRID = {"anchor_min_ratio": [75.0, 80.0, 85.0], "option_min_ratio": [60.0, 70.0, 80.0]}
EVAL_SEEDS = range(900300, 900400)  # RESERVED: evaluation only (900000-900299 is spent: scored once each, then developed on)
DEV_SEEDS = range(1000, 2000)  # development
RANDOM_WAVES = ["W26", "W29", "W32", "W36", "W41", "W45", "W50", "W54", "W82", "W92"]


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


def kept_ocr(exact: Path, pattern: str, cached_only: bool) -> Path:
    """The OCR words file to read: `exact` (named by the OCR settings in use), or under
    `--cached-only` the newest one kept for the same scan (`pattern`) though made under other OCR
    settings, so a reader change is scored on the very OCR it was scored on before."""
    if exact.exists() or not cached_only:
        return exact
    kept = sorted(exact.parent.glob(pattern), key=lambda path: path.stat().st_mtime)
    return kept[-1] if kept else exact


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
        variant = zlib.crc32(repr(OcrSettings(dpi=args.dpi)).encode())  # new OCR settings: OCR'd again
        cached = work / f"{style}_{wave_id}_q{args.max_questions}_s{seed}_dpi{args.dpi}_{variant}.words.parquet"
        cached = kept_ocr(cached, f"{style}_{wave_id}_q{args.max_questions}_s{seed}_dpi{args.dpi}_*.words.parquet",
                          args.cached_only)
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


class RandomCase(Case):
    """One random layout: a window of consecutive questions of one wave, in the layout and scan its seed draws.

    The clean PDF is deterministic (reportlab, invariant), so its hash and the seed name the
    OCR kept in the work dir: a rerun after a renderer change re-OCRs only the layouts it changed."""

    def __init__(self, seed: int, wave_id: str, args: argparse.Namespace, work: Path) -> None:
        import hashlib

        wave = _wave(wave_id)
        every = wave_render_questions(wave)
        n = args.random_questions
        start = (seed * 7919) % max(1, len(every) - n + 1)
        questions = every[start:start + n]
        table = wave.questions.set_index("qcode")
        self.truth = {q.qcode: (table.loc[q.qcode, "question"], list(table.loc[q.qcode, "options"]))
                      for q in questions}
        self.hints, self.toplines = wave_hints(wave), wave_toplines(wave)
        self.wave_id, self.style, self.seed = wave_id, f"random{seed}", seed
        _, scan, self.dims = draw_style(seed)
        work = work / "random"
        work.mkdir(parents=True, exist_ok=True)
        clean, scanned = work / f"{seed}_{wave_id}.clean.pdf", work / f"{seed}_{wave_id}.pdf"
        self.source = str(scanned)
        render_pdf(questions, clean, wave=wave_id, title=wave.topic, dates=(wave.wave_start, wave.wave_end),
                   n=len(wave.weights), style="random", seed=seed)
        digest = hashlib.sha256(clean.read_bytes() + repr(OcrSettings()).encode()).hexdigest()[:16]
        cached = work / f"{seed}_{wave_id}_{digest}.words.parquet"
        cached = kept_ocr(cached, f"{seed}_{wave_id}_*.words.parquet", args.cached_only)
        if cached.exists():
            self.words = pd.read_parquet(cached)
            self.pages = int(self.words["page"].max())
            return
        self.pages = scan_pdf(clean, scanned, seed=seed, scan=scan, keywords=random_keywords(seed, self.dims))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.words = ocr_pdf(scanned, settings=OcrSettings(), workers=args.workers, cache_dir=work / "ocr",
                                 progress=False)
        self.words.to_parquet(cached)


_WAVES: dict[str, object] = {}


def _wave(wave_id: str):
    if wave_id not in _WAVES:
        _WAVES[wave_id] = load_wave(ATP / f"{wave_id}.sav")
    return _WAVES[wave_id]


def random_layouts(args: argparse.Namespace, work: Path, start: float) -> None:
    """Score `--random` layouts from `--random-start`, overall and per dimension value."""
    seeds = range(args.random_start, args.random_start + args.random)
    reserved = set(seeds) & set(EVAL_SEEDS)
    print(f"random layouts: seeds {seeds.start}-{seeds.stop - 1} "
          f"({'RESERVED evaluation range' if reserved else 'development range'}), "
          f"{args.random_questions} questions each over {len(args.random_waves)} waves", flush=True)
    results, skipped = [], []
    for seed in seeds:
        wave_id = args.random_waves[seed % len(args.random_waves)]  # by seed: a chunked run reads the same waves
        if args.cached_only and not list((work / "random").glob(f"{seed}_{wave_id}_*.words.parquet")):
            skipped.append(seed)
            continue
        case = RandomCase(seed, wave_id, args, work)
        if args.ocr_only:
            continue
        s = case.score(args.reader, ReaderSettings())
        results.append((case, s))
        frame = case.frame(args.reader, ReaderSettings(), "codebook")
        missing = sorted(set(case.truth) - set(frame["qcode"]))
        wrong = sorted(set(frame["qcode"]) - set(case.truth))
        bad = [q for q in frame.drop_duplicates("qcode").itertuples()
               if q.qcode in case.truth and list(q.options) != case.truth[q.qcode][1]]
        if missing or wrong or bad or args.verbose:
            print(f"  seed={seed} {case.wave_id} pages={case.pages} {line(s)} not found={missing} "
                  f"claimed={wrong} options_wrong={[q.qcode for q in bad]}", flush=True)
    if args.ocr_only:
        print(f"OCR of {len(seeds)} random layouts kept in {work}", flush=True)
        return
    if skipped:
        print(f"--cached-only: {len(skipped)} layouts not OCR'd yet, left out: seeds {skipped[0]}..{skipped[-1]}")
    overall = _sum([s for _, s in results])
    print(f"random overall ({len(results)} layouts, {overall['total']} questions) {line(overall)}"
          f"{'' if meets(overall) else '  BELOW TARGET'}")
    weak = []
    for dim, values in DIMENSIONS.items():
        for value in values:
            group = [s for c, s in results if c.dims[dim] == str(value)]
            if not group:
                continue
            total = _sum(group)
            found = rates(total)[2]
            weak += [f"{dim}={value}"] if found < 0.95 else []
            print(f"  {dim}={value:<16} layouts={len(group):<3} {line(total)}{'  BELOW 0.95' if found < 0.95 else ''}")
    print(f"random dimension values below found 0.95: {weak or 'none'}; {time.perf_counter() - start:.0f}s so far",
          flush=True)


def fixed_styles(args: argparse.Namespace, work: Path, start: float) -> None:
    """The six fixed styles, before/after, then leave-one-style-out."""
    default = ReaderSettings()
    cases = {s: [Case(s, w, args, work) for w in args.waves] for s in args.styles}
    if args.ocr_only:
        return
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
        return
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
    worst = min(held_out, key=lambda s: utility(held_out[s]))
    print(f"worst held-out style={worst} {line(held_out[worst])}")


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
    ap.add_argument("--no-styles", action="store_true", help="only the random layouts")
    ap.add_argument("--random", type=int, default=100, help="random layouts to score (0: none)")
    ap.add_argument("--random-start", type=int, default=EVAL_SEEDS.start,
                    help=f"first seed (default: the reserved evaluation range {EVAL_SEEDS.start}-{EVAL_SEEDS.stop - 1}; "
                         f"develop with {DEV_SEEDS.start}-{DEV_SEEDS.stop - 1})")
    ap.add_argument("--random-waves", nargs="+", default=RANDOM_WAVES)
    ap.add_argument("--random-questions", type=int, default=20, help="consecutive questions per random layout")
    ap.add_argument("--verbose", action="store_true", help="a line per random layout")
    ap.add_argument("--cached-only", action="store_true",
                    help="score only the random layouts whose OCR is already in --work-dir (the newest kept, "
                         "even if made under other OCR settings: to score a reader change on the same OCR)")
    ap.add_argument("--ocr-only", action="store_true",
                    help="render, scan and OCR into --work-dir without scoring (a later run only reads)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="keep the scanned PDFs and their OCR here (a rerun reads them back)")
    args = ap.parse_args()
    if not ATP.is_dir():
        print(f"skipped: real ATP waves not found at {ATP}")
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.no_styles:
            fixed_styles(args, work, start)
        if args.random:
            random_layouts(args, work, start)
        print(f"{time.perf_counter() - start:.0f}s in all")
    return 0


def _sum(scores: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in scores:
        total = add(total, s)
    return total


if __name__ == "__main__":
    sys.exit(main())
