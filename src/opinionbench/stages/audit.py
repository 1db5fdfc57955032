"""`audit` stage: published datasets (OpinionQA-XL's questions, OpinionQA's per-group counts)
checked against the `.sav` microdata → data/audit/{release,group_counts}.parquet, report, metrics.

Runs before `build`, which can take the release's wording where our label is cut short
(`build.release_text`). Unconfigured (the embedded sample) it writes empty tables that say so.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from opinionbench.audit import audit_group_counts, audit_release
    from opinionbench.audit.report import write_audit
    from opinionbench.config import AuditParams, DataParams, load

    audit, data = load(AuditParams, args.params), load(DataParams, args.params)
    progress = not args.no_progress
    release = audit_release(audit.release, data.waves_dir, progress=progress) if audit.release else None
    groups = audit_group_counts(audit.group_counts, data.waves_dir, progress=progress) if audit.group_counts else None
    metrics = write_audit(audit.out_dir, release, groups, sources=(audit.release, audit.group_counts))
    print("audit: " + ", ".join(f"{k}={v}" for k, v in metrics.items()) + f" -> {audit.out_dir}")
    return 0
