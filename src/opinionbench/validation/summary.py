"""The one-screen summary a user reads when validation fails, and the summary JSON it mirrors."""

from __future__ import annotations

from typing import Any

import pandas as pd

from opinionbench.validation.exclusions import Exclusions
from opinionbench.validation.runner import Outcome, ValidationReport

MAX_DETAILED_FAILURES = 7  # x (head + why + 2 samples) + totals: one screen
MAX_SAMPLES_SHOWN = 2


def _sample_text(sample: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sample.items())


def _title(outcome: Outcome) -> str:
    return f"{outcome.suite}: {outcome.expectation}" + (f"({outcome.column})" if outcome.column else "")


def _failure_lines(outcome: Outcome) -> list[str]:
    head = f"  FAIL {_title(outcome)}"
    if outcome.unexpected_count:
        head += f" - {outcome.unexpected_count} of {outcome.element_count} rows"
    elif outcome.observed is not None:
        head += f" - observed {outcome.observed!r}"
    lines = [head]
    if outcome.why:
        lines.append(f"       why: {outcome.why}")
    shown: list[dict] = []
    for sample in outcome.samples:
        if sample not in shown and len(shown) < MAX_SAMPLES_SHOWN:
            shown.append(sample)
    lines += [f"       e.g. {_sample_text(s)}" for s in shown]
    return lines


def format_summary(report: ValidationReport, exclusions: Exclusions | None, extra: dict[str, Any] | None = None) -> str:
    """A screenful: totals, exclusions by reason, then each failing expectation with sample rows."""
    by_suite: dict[str, list[Outcome]] = {}
    for outcome in report.outcomes:
        by_suite.setdefault(outcome.suite, []).append(outcome)
    status = "PASSED" if report.success else "FAILED"
    lines = [f"validation {status}: " + ", ".join(
        f"{suite} {sum(o.success for o in items)}/{len(items)}" for suite, items in by_suite.items())]
    if exclusions is not None:
        counts = exclusions.counts()
        lines.append(f"excluded questions: {sum(counts.values())}"
                     + "".join(f"\n  {n:5d}  {reason}" for reason, n in counts.items()))
        lines.append(f"cells dropped (effective n below minimum): {exclusions.cells_dropped_low_n_eff}")
        if exclusions.stale_qkeys:
            lines.append(f"exclusions.yaml names qkeys not in the build (stale): {', '.join(exclusions.stale_qkeys[:5])}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    for outcome in report.failed[:MAX_DETAILED_FAILURES]:
        lines += _failure_lines(outcome)
    rest = report.failed[MAX_DETAILED_FAILURES:]
    if rest:
        lines.append(f"  FAIL also: {'; '.join(_title(o) for o in rest)} (details in summary.json)")
    if report.docs_index is not None:
        lines.append(f"Data Docs: {report.docs_index}")
    return "\n".join(lines)


def prediction_counts(predictions: pd.DataFrame, rates: pd.DataFrame) -> dict[str, Any]:
    """The predictions summary's own numbers: files, rows, and the verbalized parse failure rate
    (pooled over rows, so a large file weighs more than a small one)."""
    verbalized = rates[rates["verbalized_failure_rate"].notna()]  # the methods stating a distribution (derive.py)
    return {
        "prediction_files": int(len(rates)),
        "verbalized_failure_rate": (round(float(verbalized["failed"].sum() / verbalized["rows"].sum()), 4)
                                    if len(verbalized) else None),
        "predictions": int(len(predictions)),
        "failure_rate_by_file": {f"{r.file} ({r.method})": round(float(r.failure_rate), 4) for r in rates.itertuples()},
    }


def summary_dict(report: ValidationReport, exclusions: Exclusions | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "success": report.success,
        "expectations": len(report.outcomes),
        "expectations_failed": len(report.failed),
        "failed": [
            {"suite": o.suite, "expectation": o.expectation, "column": o.column, "unexpected_count": o.unexpected_count,
             "element_count": o.element_count, "why": o.why, "samples": o.samples, "observed": o.observed}
            for o in report.failed
        ],
    }
    if exclusions is not None:
        out["questions_excluded"] = sum(exclusions.counts().values())
        out["questions_excluded_by_reason"] = exclusions.counts()
        out["excluded_questions"] = dict(sorted(exclusions.questions.items()))
        out["cells_dropped_low_n_eff"] = exclusions.cells_dropped_low_n_eff
        out["stale_exclusions"] = exclusions.stale_qkeys
    out.update(extra or {})
    out["data_docs"] = str(report.docs_index) if report.docs_index else None
    return out
