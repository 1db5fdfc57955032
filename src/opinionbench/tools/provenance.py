"""`opinionbench provenance QKEY`: the whole chain behind a question's text, and its page crop (PNG)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("qkey", help="question key, e.g. ECONRATE_W900")


def run(args: argparse.Namespace) -> int:
    from opinionbench.config import BuildParams, QuestionnaireParams, load
    from opinionbench.tables import TableError, read_table

    build, params = load(BuildParams, args.params), load(QuestionnaireParams, args.params)
    questions = read_table(build.out_dir / "questions.parquet", ["qkey", "question", "text_source"])
    if "provenance" not in questions.columns:
        raise TableError(f"{build.out_dir / 'questions.parquet'}: no provenance column (rerun `dvc repro build`)")
    match = questions[questions["qkey"] == args.qkey]
    if match.empty:
        raise TableError(f"{args.qkey}: not in {build.out_dir / 'questions.parquet'}")
    row = match.iloc[0]
    chain = json.loads(row["provenance"])
    print(f"{row['qkey']}: {row['question']}")
    print(f"  options: {list(row['options'])}")
    print(f"  text source: {row['text_source']}")
    print(f"  codebook: {chain['codebook']['file']} variable {chain['codebook']['variable']}")
    release = chain.get("release")
    if release:
        print(f"  release: wording taken from {release['file']} (audit: {release['status']}, {release['reason']})")
        print(f"    codebook label: {release['codebook_label']}")
    q = chain.get("questionnaire")
    if q:
        print(f"  questionnaire: {q['file']} page {q['page']} box {q['bbox']} at {q['dpi']} dpi (printed code {q['qcode_ocr']}, routing {q['routing']!r})")
        print(f"  OCR confidence: mean {q['ocr_confidence']:.1f}, min {q['ocr_min_confidence']:.0f}")
        print("  OCR text:\n    " + q["ocr_text"].replace("\n", "\n    "))
        print(f"  correction: backend {q['correction_backend']}, model {q['model']}, cache key {q['cache_key']}")
        print(f"  diff: {q['diff'] or '(no change)'}  drift {q['drift']}")
        print(f"  status: {q['status']} {'; '.join(q['review_reasons']) if q['review_reasons'] else ''}")
        print(f"  topline: {q['topline_detail']}")
        if chain.get("note"):
            print(f"  note: {chain['note']}")
    for review in chain.get("manual_review", []):
        task = f", Label Studio task {review['task']}" if review.get("task") is not None else ""
        print(f"  manual review: {review['field']} by {review['reviewer']} on {review['date']}{task} ({review['reason']})")
        if review["field"] == "checked":
            print(f"    verdict: {review['after']}")
        else:
            print(f"    before: {review['before']}\n    after:  {review['after']}")
    print(f"  page crop: {_crop(row, q, params)}")
    return 0


def _crop(row, q: dict | None, params) -> str:
    """The crop's path, or why there is none (said, not silently skipped)."""
    from pathlib import Path

    from opinionbench.questionnaire.provenance import page_crop

    if not q:
        wave = row.get("wave", "?")
        why = (f"no questionnaire PDF for {wave} in questionnaire.pdfs" if wave not in params.pdfs
               else f"not found in the questionnaire of {wave} ({params.pdfs[wave]})")
        return f"none ({row['qkey']} has no questionnaire record: {why}; the wording is the {row['text_source']}'s)"
    if not Path(q["file"]).is_file():
        return f"none ({q['file']}: questionnaire PDF not found)"
    target = params.provenance_dir / f"{row['qkey']}.png"
    page_crop(Path(q["file"]), q["page"], q["bbox"], q["dpi"], target)
    return str(target)
