"""The audit's outputs: both tables (parquet), a Markdown report a person reads, DVC metrics,
and the review queue (every difference, most consequential first)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from opinionbench.audit.group_counts import COLUMNS as GROUP_COLUMNS
from opinionbench.audit.group_counts import GROUP_STATUSES
from opinionbench.audit.release import COLUMNS as RELEASE_COLUMNS
from opinionbench.audit.release import STATUSES, summary
from opinionbench.io import write_json, write_parquet, write_text

# review priority: lost or different answers first, then wording that may name another item
_PRIORITY = {"options_differ": 0, "wording_differs": 1, "label_truncated": 2, "options_unobserved": 3, "missing": 4}


def review_queue(release: pd.DataFrame) -> pd.DataFrame:
    """The release's differences for a person to check, most consequential first."""
    queue = release[release["status"] != "matched"].copy()
    queue["priority"] = queue["status"].map(_PRIORITY)
    queue = queue.sort_values(["priority", "wording_similarity", "qkey"], na_position="last")
    return queue[["qkey", "status", "reason", "wording_similarity", "our_question", "their_question"]]


def _table(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    return frame if frame is not None else pd.DataFrame(columns=columns)


def write_audit(out_dir: Path, release: pd.DataFrame | None, groups: pd.DataFrame | None,
                sources: tuple[Path | None, Path | None]) -> dict:
    """Write every output (empty ones when a source is not configured); return the metrics."""
    out_dir = Path(out_dir)
    release_t, groups_t = _table(release, RELEASE_COLUMNS), _table(groups, GROUP_COLUMNS)
    write_parquet(release_t, out_dir / "release.parquet")
    write_parquet(groups_t, out_dir / "group_counts.parquet")
    queue = review_queue(release_t)
    write_text(queue.to_csv(index=False), out_dir / "review_queue.csv")
    metrics = {f"release_{k}": v for k, v in summary(release_t).items()}
    counts = groups_t["status"].value_counts()
    metrics |= {"group_cells": int(len(groups_t))} | {f"group_{s}": int(counts.get(s, 0)) for s in GROUP_STATUSES}
    write_json(metrics, out_dir / "audit_metrics.json")
    write_text(_report(release_t, groups_t, sources, metrics), out_dir / "report.md")
    return metrics


# The reasons `audit.release` gives a missing question, as (pattern, kind): the report counts each
# kind once and names its items (waves, columns) instead of masking them.
_MISSING_KINDS = [
    (re.compile(r"^wave (?P<item>\S+) not available \((?P<file>\S+) not in (?P<where>.+)\)$"),
     "wave not available (no .sav in {where})"),
    (re.compile(r"^no column (?P<item>\S+) in (?P<where>\S+)$"), "no such column in the wave's .sav"),
    (re.compile(r"^(?P<item>\S+) is not a closed question in (?P<where>\S+): (?P<why>.*)$"), "not a closed question: {why}"),
]
_NAMED = 8  # items named per kind; the rest counted


def _missing_reasons(reasons: pd.Series) -> list[str]:
    """`- 38 × wave not available (no .sav in ../atp): W26, W27 (+1 more)`: one line per kind, most first."""
    kinds: dict[str, list[str | None]] = {}
    for reason in reasons.astype(str):
        for pattern, kind in _MISSING_KINDS:
            if match := pattern.match(reason):
                kinds.setdefault(kind.format(**match.groupdict()), []).append(match["item"])
                break
        else:  # a reason of another shape: counted as it is
            kinds.setdefault(reason, []).append(None)
    lines = []
    for kind, items in sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        named = sorted({i for i in items if i})
        shown = ", ".join(named[:_NAMED]) + (f" (+{len(named) - _NAMED} more)" if len(named) > _NAMED else "")
        lines.append(f"- {len(items)} × {kind}" + (f": {shown}" if shown else ""))
    return lines


def _report(release: pd.DataFrame, groups: pd.DataFrame, sources, metrics: dict) -> str:
    lines = ["# Audit of published datasets against the .sav microdata", ""]
    release_src, groups_src = sources
    lines += [f"## Questions: `{release_src}`" if release_src else "## Questions: not audited (audit.release is null)", ""]
    if len(release):
        lines += ["| status | questions | share |", "|---|---:|---:|"]
        for s in STATUSES:
            n = int((release["status"] == s).sum())
            lines.append(f"| {s} | {n} | {n / len(release):.1%} |")
        lines += ["", "Reasons of the missing questions:", ""]
        lines += _missing_reasons(release.loc[release["status"] == "missing", "reason"])
        lines += ["", "Examples per kind of difference:", ""]
        for s in ("options_differ", "label_truncated", "wording_differs", "options_unobserved"):
            for r in release[release["status"] == s].head(3).itertuples():
                lines.append(f"- `{r.qkey}` ({s}): {r.reason}")
    lines += ["", f"## Per-group counts: `{groups_src}`" if groups_src else
              "## Per-group counts: not audited (audit.group_counts is null)", ""]
    if len(groups):
        lines += ["| status | cells | share |", "|---|---:|---:|"]
        for s in GROUP_STATUSES:
            n = int((groups["status"] == s).sum())
            lines.append(f"| {s} | {n} | {n / len(groups):.1%} |")
        lost = groups[groups["status"] == "release_lost_answers"].drop_duplicates("qkey").head(10)
        if len(lost):
            lines += ["", "Questions where the release lost answers people gave:", ""]
            lines += [f"- `{r.qkey}` ({r.attribute}={r.group}): {r.reason}" for r in lost.itertuples()]
    lines += ["", "Metrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items()), ""]
    return "\n".join(lines)
