"""`ocr` stage: a wave's questionnaire PDF → data/questionnaire/<wave>/ocr.parquet (+ ocr_metrics.json)."""

from __future__ import annotations

import argparse

from opinionbench.config import QuestionnaireParams, load
from opinionbench.errors import ConfigError, OpinionBenchError, one_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("waves", nargs="*", help="wave ids with a PDF in questionnaire.pdfs (default: all)")


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_json, write_parquet
    from opinionbench.questionnaire.errors import printed_warnings
    from opinionbench.questionnaire.ocr import OcrSettings, ocr_pdf
    from opinionbench.questionnaire.segment import group_lines

    params = load(QuestionnaireParams, args.params)
    waves = args.waves or list(params.pdfs)
    failed = 0
    for wave in waves:
        if wave not in params.pdfs:
            raise ConfigError(f"params.yaml: questionnaire.pdfs: no PDF for wave {wave}")
        try:
            with printed_warnings():
                words = ocr_pdf(params.pdfs[wave], settings=OcrSettings(dpi=params.dpi, psm=params.psm),
                                workers=params.workers, cache_dir=params.ocr_cache_dir)
        except OpinionBenchError as exc:  # one bad questionnaire never stops the other waves
            print(f"error: {one_line(exc)}")
            failed += 1
            continue
        out = params.out_dir / wave
        write_parquet(words, out / "ocr.parquet")
        metrics = {
            "pages": int(words["page"].nunique()),
            "lines": len(group_lines(words)),
            "words": int(len(words)),
            "mean_confidence": round(float(words.loc[words["conf"] >= 0, "conf"].mean()), 2),
            "low_confidence_words": int((words["conf"] < 60).sum()),
        }
        write_json(metrics, out / "ocr_metrics.json")
        print(f"{wave}: OCR {metrics['pages']} pages, {metrics['lines']} lines, {metrics['words']} words, "
              f"mean confidence {metrics['mean_confidence']} -> {out / 'ocr.parquet'}")
    return 2 if failed == len(waves) else 0
