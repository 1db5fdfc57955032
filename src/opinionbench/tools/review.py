"""`opinionbench review`: the questions most in need of a human check, worst first.

Two queues: questionnaire corrections routed to review (OCR, LLM correction, toplines), and the
audit's differences between a published release and our microdata (`data/audit/`), lost or
different answers first. Either is settled the same way: an entry in the reviewed-corrections
file (`questionnaire.reviews`), after which the question is marked reviewed here.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=int, default=20, help="how many questions to list (default 20)")
    parser.add_argument("--csv", default=None, help="also write the whole queue to this CSV file")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from opinionbench.config import AuditParams, QuestionnaireParams, load
    from opinionbench.io import write_text
    from opinionbench.questionnaire.provenance import corrected_path
    from opinionbench.questionnaire.review import load_reviews, review_queue
    from opinionbench.tables import read_table

    params, audit = load(QuestionnaireParams, args.params), load(AuditParams, args.params)
    reviewed = {e.qkey for e in load_reviews(params.reviews)}
    _audit_queue(audit.out_dir / "review_queue.csv", reviewed, args.top)
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
    queue = review_queue(pd.concat(frames, ignore_index=True), reviewed)
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(queue.head(args.top).to_string(index=False))
    print(f"{int((queue['status'] == 'needs_review').sum())} of {len(queue)} questions routed to review; "
          f"{len(reviewed)} reviewed in {params.reviews}")
    if args.csv:
        write_text(queue.to_csv(index=False), Path(args.csv))
    return 0


def _audit_queue(path, reviewed: set[str], top: int) -> None:
    """The audit's differences not yet reviewed (nothing printed when no release was audited)."""
    import pandas as pd

    if not path.exists() or path.stat().st_size == 0:
        return
    queue = pd.read_csv(path)
    if queue.empty:
        return
    queue["reviewed"] = queue["qkey"].isin(reviewed)
    open_items = queue[~queue["reviewed"]]
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(open_items[["qkey", "status", "reason"]].head(top).to_string(index=False))
    print(f"audit: {len(open_items)} of {len(queue)} differences from the published release not yet reviewed ({path})")
