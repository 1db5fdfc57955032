"""`opinionbench review`: the questions most in need of a human check, worst first."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=int, default=20, help="how many questions to list (default 20)")
    parser.add_argument("--csv", default=None, help="also write the whole queue to this CSV file")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from opinionbench.config import QuestionnaireParams, load
    from opinionbench.io import write_text
    from opinionbench.questionnaire.provenance import corrected_path
    from opinionbench.questionnaire.review import load_reviews, review_queue
    from opinionbench.tables import read_table

    params = load(QuestionnaireParams, args.params)
    frames = []
    for wave in params.pdfs:
        path = corrected_path(params.out_dir, wave)
        if not path.exists():
            print(f"warning: {path}: not found, {wave} skipped (run `dvc repro correct@{wave}`)")
            continue
        frames.append(read_table(path, ["qkey", "status"]))
    if not frames:
        print("no corrected questionnaires to review")
        return 0
    reviewed = {e.qkey for e in load_reviews(params.reviews)}
    queue = review_queue(pd.concat(frames, ignore_index=True), reviewed)
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(queue.head(args.top).to_string(index=False))
    print(f"{int((queue['status'] == 'needs_review').sum())} of {len(queue)} questions routed to review; "
          f"{len(reviewed)} reviewed in {params.reviews}")
    if args.csv:
        write_text(queue.to_csv(index=False), Path(args.csv))
    return 0
