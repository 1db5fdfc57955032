"""Helper columns that turn non-native checks into plain column checks Great Expectations can run.

GX validates columns; "probabilities sum to 1", "ordinals strictly increasing", "wording looks
like text" are properties of list columns or of joins. Deriving one scalar column per property
here (pure pandas, no GX import) keeps every check reported through GX and testable on its own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opinionbench.errors import OpinionBenchError
from opinionbench.survey.codebook import ordinal_values
from opinionbench.survey.demographics import attribute_groups
from opinionbench.tables import OVERALL, PREDICTION_COLUMNS, read_table
from opinionbench.validation.words import debris_share, word_share

TEXT_SOURCES = ("codebook", "questionnaire")
LLM_BACKENDS_WITHOUT_CACHE = {None, "", "none", "codebook", "manual"}


def _as_list(value: Any) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def _is_nan_label(label: Any) -> bool:
    return label is None or (isinstance(label, float) and math.isnan(label)) or str(label).strip().lower() in {"nan", ""}


def _ordinal_ok(qkey: str, options: list, ordinal: list) -> bool:
    """Strictly increasing in codebook order, unless the overrides file explains the order."""
    if len(ordinal) != len(options):
        return False
    values = [float(v) for v in ordinal]
    if all(b > a for a, b in zip(values, values[1:])):
        return True
    try:
        expected = ordinal_values(qkey, [str(o) for o in options])
    except ValueError:
        return False
    overridden = expected != [float(i + 1) for i in range(len(options))]
    return overridden and values == expected


def _provenance(value: Any) -> dict:
    if not isinstance(value, str) or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {"_unparsable": True}
    return parsed if isinstance(parsed, dict) else {"_unparsable": True}


def _find(record: dict, *names: str) -> Any:
    """First of `names` found at the top level or one level down (provenance nests by step)."""
    for name in names:
        if name in record:
            return record[name]
    for value in record.values():
        if isinstance(value, dict):
            for name in names:
                if name in value:
                    return value[name]
    return None


def _topline_points(record: dict) -> float:
    """Worst gap (points) between printed topline and data; NaN when there was nothing to compare.

    The questionnaire provenance records `topline_ok` and a sentence (`topline_detail`: "within
    rounding", "off by 3.2 points", "3 printed values for 4 options"); a mismatch with no number
    (misaligned or unreadable values) is an infinite gap, so any tolerance flags it.
    """
    value = _find(record, "topline_max_diff", "max_diff")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    ok = _find(record, "topline_ok")
    if ok is True:
        return 0.0
    if ok is False:
        match = re.search(r"off by (\d+(?:\.\d+)?) points", str(_find(record, "topline_detail") or ""))
        return float(match.group(1)) if match else math.inf
    return math.nan


def question_checks(questions: pd.DataFrame, distributions: pd.DataFrame) -> pd.DataFrame:
    """One row per question: the questions + provenance suites' columns."""
    overall = set(distributions.loc[(distributions["attribute"] == OVERALL) & (distributions["group"] == OVERALL), "qkey"])
    rows = []
    for rec in questions.to_dict("records"):
        options = _as_list(rec.get("options"))
        ordinal = _as_list(rec.get("ordinal"))
        labels = [str(o).strip().lower() for o in options]
        wording = "" if rec.get("question") is None else str(rec["question"])
        rows.append({
            "qkey": rec["qkey"],
            "wording_length": len(wording.strip()),
            "word_share": word_share(wording),
            "debris_share": debris_share(wording),
            "n_options": len(options),
            "options_unique": len(set(labels)) == len(labels),
            "options_no_nan": not any(_is_nan_label(o) for o in options),
            "ordinal_ok": _ordinal_ok(rec["qkey"], options, ordinal),
            "has_overall_cell": rec["qkey"] in overall,
        })
    return pd.DataFrame(rows, columns=[
        "qkey", "wording_length", "word_share", "debris_share", "n_options", "options_unique",
        "options_no_nan", "ordinal_ok", "has_overall_cell",
    ])


def provenance_checks(questions: pd.DataFrame, llm_cache_dir: Path) -> pd.DataFrame:
    """One row per question: text source, LLM cache entry, topline difference (points)."""
    from opinionbench.questionnaire.cache import LLMCache  # the cache layout has one owner

    cache = LLMCache(llm_cache_dir)
    rows = []
    provenance = questions["provenance"] if "provenance" in questions.columns else pd.Series([None] * len(questions))
    for qkey, source, prov in zip(questions["qkey"], questions["text_source"], provenance):
        record = _provenance(prov)
        backend = _find(record, "correction_backend", "backend")
        key = _find(record, "cache_key")
        llm = backend not in LLM_BACKENDS_WITHOUT_CACHE
        topline = _topline_points(record)
        rows.append({
            "qkey": qkey,
            "text_source": source,
            "provenance_parsable": not record.get("_unparsable", False),
            "llm_corrected": bool(llm),
            "llm_cache_entry": (not llm) or (bool(key) and cache.path(str(key)).exists()),
            "topline_max_diff": topline,
        })
    return pd.DataFrame(rows, columns=[
        "qkey", "text_source", "provenance_parsable", "llm_corrected", "llm_cache_entry", "topline_max_diff",
    ])


def _probs_columns(frame: pd.DataFrame, n_options: pd.Series | None) -> pd.DataFrame:
    """Per row of list column `probs`: |sum - 1|, min, max, length (vectorised: 700k rows in < 1 s).

    A row with a non-finite value gets an infinite sum error; an empty list gets NaN (no probs).
    """
    lists = [p if isinstance(p, np.ndarray) else _as_list(p) for p in frame["probs"]]  # parquet gives arrays
    lengths = np.fromiter((len(p) for p in lists), dtype=np.int64, count=len(lists))
    sums = np.full(len(lists), np.nan)
    mins, maxs = sums.copy(), sums.copy()
    nonempty = lengths > 0
    if nonempty.any():
        try:
            flat = np.concatenate([np.asarray(p, dtype=float) for p in lists if len(p)])
        except (TypeError, ValueError):  # a non-number inside a list: it becomes NaN, hence a failed sum
            objects = np.concatenate([np.asarray(p, dtype=object) for p in lists if len(p)])
            flat = pd.to_numeric(pd.Series(objects), errors="coerce").to_numpy(dtype=float)
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        finite = np.logical_and.reduceat(np.isfinite(flat), starts)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values overflow to inf: a failed sum
            sums[nonempty] = np.where(finite, np.abs(np.add.reduceat(np.nan_to_num(flat), starts) - 1.0), np.inf)
        mins[nonempty] = np.fmin.reduceat(flat, starts)
        maxs[nonempty] = np.fmax.reduceat(flat, starts)
    out = pd.DataFrame({"probs_sum_error": sums, "probs_min": mins, "probs_max": maxs, "probs_length": lengths},
                       index=frame.index)
    out["probs_aligned"] = (out["probs_length"] == n_options).fillna(False) if n_options is not None else True
    return out


def _option_counts(questions: pd.DataFrame) -> pd.Series:
    """qkey -> number of options; a duplicated qkey (itself a failed check) keeps its first row."""
    return questions.drop_duplicates("qkey").set_index("qkey")["options"].map(len)


def distribution_checks(distributions: pd.DataFrame, questions: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: probabilities valid and aligned, known question and group, sizes."""
    known_groups = {(a, g) for a, groups in attribute_groups().items() for g in groups} | {(OVERALL, OVERALL)}
    n_options = distributions["qkey"].map(_option_counts(questions))
    out = distributions[["qkey", "attribute", "group", "refusal_rate", "n", "n_eff"]].copy()
    out = out.join(_probs_columns(distributions, n_options))
    out["qkey_known"] = distributions["qkey"].isin(set(questions["qkey"]))
    out["group_known"] = [(a, g) in known_groups for a, g in zip(distributions["attribute"], distributions["group"])]
    return out.reset_index(drop=True)


def read_prediction_files(directory: Path, files: list[Path] | None = None) -> pd.DataFrame:
    """The predictions parquet `files` under `directory` (default: every one there), with the file
    each row came from (the `file` column names a failing row in the summary)."""
    files = sorted(Path(directory).rglob("*.parquet")) if files is None else sorted(files)
    if not files:
        raise OpinionBenchError(f"{directory}: no predictions parquet files (run inference first)")
    frames = []
    for path in files:
        frame = read_table(path, [c for c in PREDICTION_COLUMNS if c in ("qkey", "attribute", "group", "probs",
                                                                         "failed", "error", "method")])
        frames.append(frame.assign(file=str(path.relative_to(directory))))
    return pd.concat(frames, ignore_index=True)


def prediction_checks(predictions: pd.DataFrame, questions: pd.DataFrame) -> pd.DataFrame:
    """One row per prediction: for answered rows, probabilities valid and aligned with options."""
    answered = ~predictions["failed"].astype(bool)
    n_options = predictions["qkey"].map(_option_counts(questions))
    out = predictions[["file", "qkey", "attribute", "group", "method", "failed"]].copy()
    out = out.join(_probs_columns(predictions, n_options))
    out.loc[~answered, ["probs_sum_error", "probs_min", "probs_max"]] = np.nan  # failed rows carry no probs
    out["probs_aligned"] = out["probs_aligned"] | ~answered
    out["failed_has_error"] = answered | predictions["error"].notna()
    out["qkey_known"] = predictions["qkey"].isin(set(questions["qkey"]))
    return out.reset_index(drop=True)


def failure_rates(predictions: pd.DataFrame, stated: Collection[str]) -> pd.DataFrame:
    """One row per predictions file: share of prompts whose reply could not be parsed; for the
    methods in `stated` (those whose reply states the distribution, elicit's `states_distribution`)
    also as `verbalized_failure_rate`."""
    grouped = predictions.groupby(["file", "method"], sort=True)["failed"]
    out = grouped.agg(rows="size", failed="sum").reset_index()
    out["failure_rate"] = out["failed"] / out["rows"]
    out["verbalized_failure_rate"] = out["failure_rate"].where(out["method"].isin(set(stated)))
    return out
