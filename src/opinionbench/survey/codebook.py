"""Codebook extraction: which `.sav` columns are survey questions, and what their options mean.

The value labels of a question column are the authority for its options and their order (Pew's
codebook order); the variable label is the question wording. Everything that is not a
multiple-choice question (admin fields, F_* profile, weights, open ends, numerics) is skipped
with a recorded reason, so a user can audit what the dataset leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Mapping

import yaml

from opinionbench.survey.answer_classes import AnswerConvention, is_substantive

ADMIN_PATTERN = re.compile(
    r"^(QKEY|CASEID|RESPID|INTERVIEW_(START|END|DATE)|LANG|FORM|XW|XPANEL|XTABLET|"
    r"SAMPLE|MODE|DURATION|PANEL|COHORT|XSPANISH|XMOBILE|DATEFORM|DOV_)"
    r"|DEVICE_TYPE|PRIMARY_LANGUAGE",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QuestionEntry:
    """One multiple-choice question of a wave, as its codebook defines it."""

    qkey: str
    wave: str
    qcode: str
    question: str
    options: list[str]
    option_codes: list[float]
    refusal_options: list[str]
    refusal_codes: list[float]
    ordinal: list[float]


@dataclass
class Codebook:
    questions: list[QuestionEntry] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # column -> reason


def clean_label(text: str) -> str:
    """Value/variable labels carry stray spaces and SPSS line breaks; fold them."""
    return re.sub(r"\s+", " ", str(text)).strip()


def strip_code_prefix(label: str, column: str, qcode: str) -> str:
    """Drop the `CODE_Wnn.` (or `CODE.`) prefix Pew puts before the wording in variable labels."""
    text = clean_label(label)
    for prefix in (column, qcode):
        if text[: len(prefix)].lower() == prefix.lower():
            rest = text[len(prefix):].lstrip()
            if rest[:1] in (".", ":"):
                return rest[1:].strip()
    return text


@lru_cache(maxsize=1)
def ordinal_overrides() -> dict:
    """The repo's overrides file: exact ordinals per qkey and label rules for middle options."""
    text = resources.files("opinionbench.resources").joinpath("ordinal_overrides.yaml").read_text()
    return yaml.safe_load(text) or {}


def ordinal_values(qkey: str, options: list[str]) -> list[float]:
    """Codebook order (1..k) unless the overrides file places an option elsewhere.

    A "Neither"-type option that Pew lists after both poles belongs between them; the overrides
    file says so declaratively (by qkey, or by a label rule applied to trailing options).
    """
    rules = ordinal_overrides()
    by_qkey = rules.get("by_qkey", {}) or {}
    if qkey in by_qkey:
        values = [float(v) for v in by_qkey[qkey]]
        if len(values) != len(options):
            raise ValueError(f"ordinal_overrides.yaml: {qkey} has {len(values)} values for {len(options)} options")
        return values
    values = [float(i + 1) for i in range(len(options))]
    for rule in rules.get("middle_options", []) or []:
        pattern = re.compile(rule["pattern"], re.IGNORECASE)
        last = options[-1] if options else ""
        if len(options) >= int(rule.get("min_options", 4)) and pattern.search(last):
            others = values[:-1]
            values[-1] = (min(others) + max(others)) / 2.0
    return values


def extract_codebook(
    wave: str,
    column_names: list[str],
    column_labels: Mapping[str, str | None],
    value_labels: Mapping[str, Mapping[float, str]],
    string_columns: set[str],
    weight_columns: set[str],
    convention: AnswerConvention = "pew",
) -> Codebook:
    """Turn a wave's SPSS metadata into question entries plus a skip report.

    Which value labels are answers follows the answer-class `convention` (answer_classes.py).
    """
    book = Codebook()
    suffix = f"_{wave}"
    for col in column_names:
        if col in weight_columns or col.upper().startswith("WEIGHT"):
            book.skipped[col] = "weight"
            continue
        if col.upper().startswith("F_"):
            book.skipped[col] = "profile (F_*) variable"
            continue
        if ADMIN_PATTERN.match(col):
            book.skipped[col] = "admin variable"
            continue
        if col in string_columns:
            book.skipped[col] = "open-ended (text) answer"
            continue
        labels = value_labels.get(col) or {}
        if not labels:
            book.skipped[col] = "numeric (no value labels)"
            continue
        if not col.endswith(suffix):
            book.skipped[col] = f"not a {wave} question column (no {suffix} suffix)"
            continue
        qcode = col[: -len(suffix)]
        try:
            items = sorted(((float(code), clean_label(text)) for code, text in labels.items()), key=lambda kv: kv[0])
        except (TypeError, ValueError):
            book.skipped[col] = "non-numeric answer codes"
            continue
        answers = [is_substantive(t, c, convention) for c, t in items]
        substantive = [item for item, answer in zip(items, answers) if answer]
        refusals = [item for item, answer in zip(items, answers) if not answer]
        if len(substantive) < 2:
            book.skipped[col] = f"fewer than 2 substantive options ({len(substantive)})"
            continue
        options = [t for _, t in substantive]
        if len(set(options)) != len(options):
            book.skipped[col] = "duplicate option labels"
            continue
        qkey = col
        book.questions.append(
            QuestionEntry(
                qkey=qkey,
                wave=wave,
                qcode=qcode,
                question=strip_code_prefix(column_labels.get(col) or "", col, qcode),
                options=options,
                option_codes=[c for c, _ in substantive],
                refusal_options=[t for _, t in refusals],
                refusal_codes=[c for c, _ in refusals],
                ordinal=ordinal_values(qkey, options),
            )
        )
    return book
