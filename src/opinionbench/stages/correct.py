"""`correct` stage: OCR words → question blocks → corrected questions (data/questionnaire/<wave>/corrected.parquet)."""

from __future__ import annotations

import argparse

from opinionbench.config import DataParams, QuestionnaireParams, load
from opinionbench.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("waves", nargs="*", help="wave ids with a PDF in questionnaire.pdfs (default: all)")


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_json, write_parquet, write_text
    from opinionbench.questionnaire.plots import quality_plot
    from opinionbench.questionnaire.correct import make_backend
    from opinionbench.questionnaire.errors import printed_warnings
    from opinionbench.questionnaire.pipeline import (
        correct_blocks,
        missing_questions,
        read_blocks_of,
        wave_hints,
        wave_toplines,
    )
    from opinionbench.survey import load_wave
    from opinionbench.tables import read_table

    data, params = load(DataParams, args.params), load(QuestionnaireParams, args.params)
    backend = make_backend(params.correction.backend, params.correction)
    for wave_id in args.waves or list(params.pdfs):
        if wave_id not in params.pdfs:
            raise ConfigError(f"params.yaml: questionnaire.pdfs: no PDF for wave {wave_id}")
        out = params.out_dir / wave_id
        words = read_table(out / "ocr.parquet", ["page", "text", "conf", "left", "top"])
        sav = data.waves_dir / f"{wave_id}.sav"
        with printed_warnings():
            wave = load_wave(sav) if sav.exists() else None
            if wave is None:
                print(f"warning: {sav}: no microdata for {wave_id}: no codebook hints, no topline check")
            hints = wave_hints(wave) if wave is not None else {}
            toplines = wave_toplines(wave) if wave is not None else {}
            blocks = read_blocks_of(words, hints=hints, toplines=toplines, reader=params.reader,
                                    source=str(params.pdfs[wave_id]))
            corrected = correct_blocks(blocks, wave_id=wave_id, backend=backend, params=params.correction,
                                       hints=hints, toplines=toplines, source=str(params.pdfs[wave_id]))
        write_parquet(corrected, out / "corrected.parquet")
        write_text(corrected[["qkey", "page", "confidence", "drift", "status"]].to_csv(index=False),
                   out / "quality.csv")
        quality_plot(corrected, out / "quality.png", f"{wave_id} questionnaire: OCR confidence and correction drift "
                     f"({backend.name})")
        missing = missing_questions(corrected, hints) if hints else []
        metrics = {
            "backend": backend.name,
            "questions_found": int(len(corrected)),
            "codebook_questions": len(hints),
            "missing_from_questionnaire": len(missing),
            "accepted": int((corrected["status"] == "accepted").sum()),
            "needs_review": int((corrected["status"] == "needs_review").sum()),
            "topline_mismatches": int((corrected["topline_ok"] == False).sum()),  # noqa: E712 (None = unchecked)
            "corrected_questions": int((corrected["diff"] != "").sum()),
        }
        write_json(metrics | {"missing": missing}, out / "correct_metrics.json")
        print(f"{wave_id}: {metrics['questions_found']} questions ({metrics['accepted']} accepted, "
              f"{metrics['needs_review']} to review, {metrics['corrected_questions']} corrected by {backend.name}, "
              f"{metrics['topline_mismatches']} topline mismatches); missing from questionnaire: {missing or 'none'}")
    return 0
