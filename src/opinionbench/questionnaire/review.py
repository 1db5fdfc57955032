"""Manual verification: the reviewed-corrections file (applied last) and the review queue.

`data/reviews/corrections.yaml` holds what a person checked against the page: per qkey the
field, the corrected value, who, when and why. It wins over every automatic step. A `checked`
entry changes nothing and records a verdict ("ours is right" for an audit difference, a rejected
automatic correction), so the question leaves the queue with the check on record. Entries pulled
from Label Studio also carry the task id and the submission time. The queue ranks questions by
how much they need a human: corrections routed to review, low OCR confidence, large
corrections, topline mismatches.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from opinionbench.errors import OpinionBenchError
from opinionbench.io import read_structured

LOW_CONFIDENCE = 90.0


class ReviewError(OpinionBenchError):
    """The reviewed-corrections file is malformed or names something that does not exist."""


class ReviewEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    qkey: str
    field: Literal["question", "options", "checked"]
    value: str | list[str]
    reviewer: str
    date: dt.date
    reason: str
    # Set by `opinionbench review pull`: where the entry came from, when it was submitted, what it replaced.
    task: int | None = None
    time: dt.datetime | None = None
    before: str | list[str] | None = None


def load_reviews(path: Path | None) -> list[ReviewEntry]:
    """The reviewed corrections; none when no file is configured or it does not exist yet (nothing reviewed)."""
    if path is None:
        return []
    path = Path(path)
    if not path.exists():
        return []
    raw = read_structured(path, kind="yaml", error=ReviewError) or {}
    items = raw.get("corrections") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ReviewError(f"{path}: expected a top-level `corrections:` list")
    entries = []
    for i, item in enumerate(items, 1):
        try:
            entry = ReviewEntry.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(map(str, first["loc"])) or "entry"
            raise ReviewError(f"{path}: corrections[{i}] ({(item or {}).get('qkey', '?') if isinstance(item, dict) else '?'}): "
                              f"{key}: {first['msg']}") from None
        if entry.field == "options" and not isinstance(entry.value, list):
            raise ReviewError(f"{path}: corrections[{i}] ({entry.qkey}): options value must be a list")
        if entry.field in ("question", "checked") and not isinstance(entry.value, str):
            raise ReviewError(f"{path}: corrections[{i}] ({entry.qkey}): {entry.field} value must be a string")
        entries.append(entry)
    return entries


def review_record(entry: ReviewEntry, before: str | list[str] | None) -> dict:
    record = {"field": entry.field, "before": before, "after": entry.value, "reviewer": entry.reviewer,
              "date": entry.date.isoformat(), "reason": entry.reason}
    if entry.task is not None:
        record |= {"task": entry.task, "time": entry.time.isoformat() if entry.time else None}
    return record


def apply_reviews(questions: pd.DataFrame, entries: list[ReviewEntry], source: Path | None) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """Reviewed values written over the table; returns it and, per qkey, the review records.

    A reviewed wording sets `text_source` to `reviewed` (when the table has the column): the text
    is then a person's, whatever step proposed it. `checked` entries change no value.
    """
    out = questions.copy()
    index = {k: i for i, k in zip(out.index, out["qkey"])}
    applied: dict[str, list[dict]] = {}
    for entry in entries:
        if entry.qkey not in index:
            warnings.warn(f"{source}: {entry.qkey}: reviewed correction for a question not in the dataset; skipped",
                          stacklevel=2)
            continue
        i = index[entry.qkey]
        if entry.field == "checked":
            applied.setdefault(entry.qkey, []).append(review_record(entry, None))
            continue
        before = out.at[i, entry.field]
        if entry.field == "options" and len(entry.value) != len(before):
            raise ReviewError(f"{source}: {entry.qkey}: reviewed options have {len(entry.value)} labels, the "
                              f"question has {len(before)} (the distribution is aligned to them)")
        out.at[i, entry.field] = entry.value if entry.field == "question" else list(entry.value)
        if entry.field == "question" and "text_source" in out.columns:
            out.at[i, "text_source"] = "reviewed"
        applied.setdefault(entry.qkey, []).append(review_record(entry, list(before) if entry.field == "options" else before))
    return out, applied


def review_queue(corrected: pd.DataFrame, reviewed: set[str] | None = None) -> pd.DataFrame:
    """Questions ranked by need of review, with the reasons in words."""
    reviewed = reviewed or set()
    rows = []
    for r in corrected.itertuples():
        score, why = 0.0, []
        if r.status == "needs_review":
            score += 3.0
            why += list(r.review_reasons)
        if r.confidence < LOW_CONFIDENCE:
            score += (LOW_CONFIDENCE - r.confidence) / 10.0
            why.append(f"OCR confidence {r.confidence:.0f}")
        if r.drift is not None and not pd.isna(r.drift) and r.drift > 0:
            score += 10.0 * r.drift
            if r.drift >= 0.02:
                why.append(f"correction changed {100 * r.drift:.0f}% of characters")
        if r.topline_ok is False and not any("topline" in w for w in why):
            score += 2.0
            why.append(f"topline: {r.topline_detail}")
        rows.append({"qkey": r.qkey, "score": round(score, 2), "status": r.status, "page": r.page,
                     "confidence": r.confidence, "drift": r.drift, "reviewed": r.qkey in reviewed,
                     "why": "; ".join(why) or "-"})
    frame = pd.DataFrame(rows, columns=["qkey", "score", "status", "page", "confidence", "drift", "reviewed", "why"])
    return frame.sort_values(["reviewed", "score"], ascending=[True, False]).reset_index(drop=True)
