"""Turning per-group answer counts into the `questions` and `distributions` tables."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opinionbench.errors import OpinionBenchError
from opinionbench.io import read_structured
from opinionbench.tables import DISTRIBUTION_COLUMNS, OVERALL, QUESTION_COLUMNS

_REFUSAL = re.compile(r"^(refused|dk/refused|don'?t know|dk|no answer|not sure)\b", re.IGNORECASE)


class DatasetImportError(OpinionBenchError):
    """A file of an external benchmark is missing or not in the shape its importer expects."""


def is_refusal(option: str) -> bool:
    return bool(_REFUSAL.match(str(option).strip()))


@dataclass
class QuestionRecord:
    """One question of an external benchmark, with its answer counts (or shares) per group.

    `counts` maps (attribute, group) → {option label: count}; labels outside `all_options` are
    an error. Refusal-type options are kept apart, as in the build.
    """

    qkey: str
    question: str
    all_options: list[str]
    counts: dict[tuple[str, str], Mapping[str, float]]
    ordinal: list[float] | None = None  # aligned with the substantive options; None = 1..k
    wave: str = ""
    survey: str = ""
    topic: str = ""
    similar_qkeys: list[str] = field(default_factory=list)
    refusals: list[str] | None = None  # explicit refusal-type options; None = the importer's rule


@dataclass
class ImportedDataset:
    name: str
    questions: pd.DataFrame
    distributions: pd.DataFrame
    human_annotations: pd.DataFrame | None = None  # steering, tv: the human baseline
    source: str = ""
    notes: list[str] = field(default_factory=list)


def build_tables(records: Sequence[QuestionRecord], source_file: str, add_overall_from: str | None,
                 refusal: Callable[[str], bool] = is_refusal) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(questions, distributions) with the build's columns (plus `similar_qkeys`).

    `add_overall_from`: an attribute whose groups partition the respondents; their summed
    counts become the Overall row (None when no such attribute exists, e.g. per-country data).
    Groups named like a refusal ("Refused") still count toward Overall but are not groups.
    `refusal` decides which options are kept apart (the release's own rule where its ordinals
    depend on it: OpinionQA counts only "Refused").
    """
    qrows, drows = [], []
    for rec in records:
        is_refused = (lambda o: o in rec.refusals) if rec.refusals is not None else refusal
        substantive = [o for o in rec.all_options if not is_refused(o)]
        refusals = [o for o in rec.all_options if is_refused(o)]
        if len(substantive) < 2:
            raise DatasetImportError(f"{source_file}: {rec.qkey}: fewer than two substantive options {rec.all_options}")
        ordinal = rec.ordinal if rec.ordinal is not None else [float(i + 1) for i in range(len(substantive))]
        if len(ordinal) != len(substantive):
            raise DatasetImportError(
                f"{source_file}: {rec.qkey}: {len(ordinal)} ordinal values for {len(substantive)} options {substantive}")
        qrows.append({
            "qkey": rec.qkey, "wave": rec.wave, "qcode": rec.qkey.rsplit("_W", 1)[0] if rec.wave else rec.qkey,
            "question": rec.question, "options": substantive, "option_codes": [float(i + 1) for i in range(len(substantive))],
            "refusal_options": refusals, "refusal_codes": [99.0] * len(refusals), "ordinal": [float(v) for v in ordinal],
            "weight_column": None, "survey": rec.survey, "wave_start": None, "wave_end": None, "topic": rec.topic,
            "text_source": "imported", "source_file": source_file, "similar_qkeys": list(rec.similar_qkeys),
        })
        cells = dict(rec.counts)
        if add_overall_from is not None:
            total: dict[str, float] = {}
            for (attribute, _group), counts in rec.counts.items():
                if attribute == add_overall_from:
                    for option, value in counts.items():
                        total[option] = total.get(option, 0.0) + float(value)
            if total:
                cells = {(OVERALL, OVERALL): total, **cells}
        for (attribute, group), counts in cells.items():
            if is_refusal(group):
                continue
            unknown = set(counts) - set(rec.all_options)
            if unknown:
                raise DatasetImportError(f"{source_file}: {rec.qkey}/{group}: answers {sorted(unknown)} not among options")
            sub = np.array([float(counts.get(o, 0.0)) for o in substantive])
            refused = sum(float(counts.get(o, 0.0)) for o in refusals)
            if sub.sum() <= 0:
                continue  # no substantive answer from this group: no truth to compare with
            drows.append({
                "qkey": rec.qkey, "attribute": attribute, "group": group, "probs": list(sub / sub.sum()),
                "refusal_rate": refused / (sub.sum() + refused), "n": float(sub.sum()), "n_eff": float("nan"),
            })
    questions = pd.DataFrame(qrows, columns=[*QUESTION_COLUMNS, "similar_qkeys"])
    distributions = pd.DataFrame(drows, columns=DISTRIBUTION_COLUMNS)
    return questions, distributions


def read_json(path: Path, expect: type = dict) -> Any:
    """The parsed file; every file of the release is a JSON object (mapping keys to entries)."""
    if not Path(path).exists():
        raise DatasetImportError(f"{path}: not found (is datasets.distributional_alignment the release directory?)")
    data = read_structured(path, kind="json", error=DatasetImportError)
    if not isinstance(data, expect):
        raise DatasetImportError(f"{path}: expected a JSON {expect.__name__}, found {type(data).__name__}")
    return data


def read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DatasetImportError(f"{path}: not found (is datasets.distributional_alignment the release directory?)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetImportError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
