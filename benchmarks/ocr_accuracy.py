"""OCR + correction accuracy against the codebook truth, on scanned questionnaires of real waves.

For each wave (default W26 W29 W54 W82 W92 from ../shared/data/atp) the renderer writes a
scanned topline questionnaire, the pipeline OCRs and segments it once, and every backend
corrects the same blocks. Truth = the codebook wording and options. Printed per backend:
wording CER (character edit distance / truth length), options exact-match rate and the share of
questions found; `none` is the "before" line. The last line is the default backend (codebook).

    .venv/bin/python benchmarks/ocr_accuracy.py [--waves W26 W54] [--max-questions 25] [--openai-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from opinionbench.config import CorrectionParams  # noqa: E402
from opinionbench.questionnaire.correct import make_backend  # noqa: E402
from opinionbench.questionnaire.ocr import OcrSettings, ocr_pdf  # noqa: E402
from opinionbench.questionnaire.pipeline import correct_blocks, wave_hints, wave_toplines  # noqa: E402
from opinionbench.questionnaire.render import render_pdf, scan_pdf, wave_render_questions  # noqa: E402
from opinionbench.questionnaire.segment import segment  # noqa: E402
from opinionbench.survey import load_wave  # noqa: E402

ATP = (REPO / ".." / "shared" / "data" / "atp").resolve()


def score(frame, truth) -> dict:
    edits = chars = exact = 0
    for row in frame.itertuples():
        if row.qcode not in truth:
            continue
        t_question, t_options = truth[row.qcode]
        edits += Levenshtein.distance(row.question, t_question)
        chars += len(t_question)
        exact += list(row.options) == list(t_options)
    found = len(set(frame["qcode"]) & set(truth))
    return {"edits": edits, "chars": chars, "exact": exact, "found": found, "total": len(truth)}


def line(name: str, s: dict) -> str:
    cer = s["edits"] / max(s["chars"], 1)
    return (f"wording_cer={cer:.4f} options_exact={s['exact'] / max(s['found'], 1):.3f} "
            f"found={s['found'] / max(s['total'], 1):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waves", nargs="+", default=["W26", "W29", "W54", "W82", "W92"])
    ap.add_argument("--max-questions", type=int, default=25, help="questions rendered per wave (keeps it minutes)")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="scan degradation seed (rotation, noise)")
    ap.add_argument("--openai-url", default=None, help="also run the openai backend against this endpoint")
    ap.add_argument("--openai-model", default="smollm2")
    args = ap.parse_args()
    if not ATP.is_dir():
        print(f"skipped: real ATP waves not found at {ATP}")
        return 0
    backends = {"none": CorrectionParams(backend="none"), "codebook": CorrectionParams(backend="codebook")}
    if args.openai_url:
        backends["openai"] = CorrectionParams(backend="openai", base_url=args.openai_url, model=args.openai_model,
                                              response_format="json_object",
                                              cache_dir=REPO / "data" / "cache" / "llm-benchmark")
    totals = {b: {"edits": 0, "chars": 0, "exact": 0, "found": 0, "total": 0} for b in backends}
    start = time.perf_counter()
    pages = 0
    with tempfile.TemporaryDirectory() as tmp:
        for wave_id in args.waves:
            wave = load_wave(ATP / f"{wave_id}.sav")
            questions = wave_render_questions(wave)[: args.max_questions]
            truth_all = wave.questions.set_index("qcode")
            truth = {q.qcode: (truth_all.loc[q.qcode, "question"], list(truth_all.loc[q.qcode, "options"]))
                     for q in questions}
            clean, scanned = Path(tmp) / f"{wave_id}.clean.pdf", Path(tmp) / f"{wave_id}.pdf"
            render_pdf(questions, clean, wave=wave_id, title=wave.topic, dates=(wave.wave_start, wave.wave_end),
                       n=len(wave.weights))
            pages += scan_pdf(clean, scanned, dpi=args.dpi, seed=args.seed + zlib.crc32(wave_id.encode()) % 1000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                words = ocr_pdf(scanned, settings=OcrSettings(dpi=args.dpi), workers=args.workers,
                                cache_dir=Path(tmp) / "ocr", progress=False)
                blocks = segment(words, source=str(scanned))
            hints, toplines = wave_hints(wave), wave_toplines(wave)
            for name, params in backends.items():
                frame = correct_blocks(blocks, wave_id=wave_id, backend=make_backend(name, params), params=params,
                                       hints=hints, toplines=toplines, progress=False)
                s = score(frame, truth)
                for k in s:
                    totals[name][k] += s[k]
                mism = int((frame["topline_ok"] == False).sum())  # noqa: E712
                missing = sorted(set(truth) - set(frame["qcode"]))
                print(f"{wave_id} backend={name:<8} {line(name, s)} topline_mismatches={mism}"
                      + (f" not_found={missing}" if missing else ""), flush=True)
    print(f"{len(args.waves)} waves, {pages} pages, {sum(t['total'] for t in totals.values()) // len(totals)} "
          f"questions in {time.perf_counter() - start:.0f}s")
    for name in backends:
        label = "before (raw OCR)" if name == "none" else "after"
        print(f"backend={name:<8} {label:<16} {line(name, totals[name])}")
    print(line("codebook", totals["codebook"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
