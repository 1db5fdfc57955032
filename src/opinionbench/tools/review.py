"""`opinionbench review [export|push|pull]`: the questions most in need of a human check.

Without an action: the queue in the terminal, worst first, in two headed tables: questionnaire
corrections with something to check (routed to review, low OCR confidence, large corrections,
topline mismatches) and the audit's differences from a published release. Either is settled by
an entry in the reviewed-corrections file (`questionnaire.reviews`): a corrected value, or
`field: checked` when ours is right. With Label Studio (README "Manual review in Label Studio"):
`export` writes the queue as tasks (page crop, OCR, corrected, codebook and release wording,
options, why, priority) and a labeling config; `push` puts them in a project on the server
(`review.url`, token from `$<review.api_token_env>`); `pull` turns submitted annotations into
corrections.yaml entries, adding only, and reports conflicts instead of writing them.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "export", "push", "pull"], default="list",
                        help="list (default): print the queue; export/push/pull: the Label Studio round trip")
    parser.add_argument("--top", type=int, default=20, help="list: how many questions per table (default 20)")
    parser.add_argument("--csv", default=None, help="list: also write the whole questionnaire queue to this CSV file")
    parser.add_argument("--all", action="store_true", dest="everything",
                        help="export: every built question, not only the queue (a full manual verification)")


def run(args: argparse.Namespace) -> int:
    import warnings

    from opinionbench.annotation.queue import gather
    from opinionbench.config import AuditParams, BuildParams, QuestionnaireParams, ReviewParams, load

    params = load(QuestionnaireParams, args.params)
    review = load(ReviewParams, args.params)
    build = load(BuildParams, args.params)
    if args.action in ("push", "pull"):
        return _remote(args.action, review, params)
    questions = build.out_dir / "questions.parquet"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        queue = gather(params.out_dir, params.pdfs, params.reviews, load(AuditParams, args.params).out_dir, questions)
    for note in queue.notes + [str(w.message) for w in caught]:
        print(f"note: {note}")
    if args.action == "export":
        return _export(queue, questions, review, args.everything)
    _print(queue, params, args.top)
    if args.csv:
        from pathlib import Path

        from opinionbench.io import write_text

        write_text(queue.questionnaire.to_csv(index=False), Path(args.csv))
    return 0


def _print(queue, params, top: int) -> None:
    import pandas as pd

    q, flagged = queue.questionnaire, queue.flagged()
    open_flagged = flagged[~flagged["reviewed"]]
    routed = int((q["status"] == "needs_review").sum())
    print(f"== Questionnaire corrections to check: {len(open_flagged)} open of {len(q)} questions "
          f"({routed} routed to review, {len(flagged) - routed} flagged for a lower-priority reason) ==")
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(open_flagged.head(top).to_string(index=False) if len(open_flagged) else "(none)")
    audit = queue.audit
    open_audit = audit[~audit["reviewed"]] if len(audit) else audit
    print(f"\n== Audit differences from the published release to check: {len(open_audit)} open of {len(audit)} ==")
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(open_audit[["qkey", "status", "reason"]].head(top).to_string(index=False) if len(open_audit)
              else "(none; audit.release is null or every difference is reviewed)")
    print(f"\n{len({e.qkey for e in queue.entries})} questions reviewed in {params.reviews} "
          "(settle one there: a corrected value, or `field: checked` when ours is right)")


def _export(queue, questions, review, everything: bool) -> int:
    import pandas as pd

    from opinionbench.annotation.tasks import build_tasks, write_export
    from opinionbench.tables import TableError

    if not questions.exists():
        raise TableError(f"{questions}: not found (run `dvc repro build` first: tasks show the built wording)")
    tasks = build_tasks(queue, pd.read_parquet(questions), everything)
    tasks_path, config_path = write_export(tasks, review.export_dir)
    print(f"export: {len(tasks)} tasks -> {tasks_path} (labeling config {config_path})")
    return 0


def _remote(action: str, review, params) -> int:
    from opinionbench.annotation.client import LabelStudio
    from opinionbench.annotation.sync import pull, push

    client = LabelStudio.from_params(review)
    try:
        if action == "push":
            done = push(client, review.export_dir, review.project)
            print(f"push: project {review.project!r} (id {done.project_id}, {done.project}) at {review.url}: "
                  f"{done.added} tasks added, {done.updated} updated, {done.unchanged} unchanged")
            return 0
        if params.reviews is None:
            from opinionbench.errors import ConfigError

            raise ConfigError("params.yaml: questionnaire.reviews: is null; pull needs a reviewed-corrections file")
        pulled = pull(client, review.export_dir, review.project, params.reviews)
    finally:
        client.close()
    for entry in pulled.added:
        print(f"pulled: task {entry.task} ({entry.qkey}): {entry.field} by {entry.reviewer}")
    for problem in pulled.problems:
        print(f"conflict: {problem}")
    print(f"pull: {len(pulled.added)} entries added to {params.reviews}, {pulled.already} already there, "
          f"{len(pulled.problems)} not recorded")
    return 1 if pulled.problems else 0
