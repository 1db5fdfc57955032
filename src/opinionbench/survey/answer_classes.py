"""Which answer labels are not answers: refusals, no-answers and volunteered don't-knows.

Why whole-label rules (resources/answer_classes.yaml) and not a prefix regex: Pew's labels
include real answers that begin like a refusal ("Don't know what that is" is the second most
common reason Democrats give in PWMAN2_W49). A plain "Don't know" is an answer where the web
questionnaire offered it (it then has an ordinary code, 3, 4, 5 ...) and a non-answer where Pew
coded it as a missing value (98, 99 ...) or marked it volunteered; "Not sure" is always offered.
The convention is a parameter because OpinionQA removes only "Refused"; comparing with its
numbers needs its convention.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable, Literal

import yaml

# Which labels are non-answers (params.yaml build.answer_classes); rules in resources/answer_classes.yaml.
AnswerConvention = Literal["pew", "opinionqa"]

SUBSTANTIVE = "substantive"
NONSUBSTANTIVE_CLASSES = ("refused", "no_answer", "dont_know")
_MENTIONS_NOT_KNOWING = re.compile(r"\b(don't know|dont know|dk|not sure|unsure)\b")


@dataclass(frozen=True)
class _Rules:
    refused: re.Pattern[str]
    no_answer: re.Pattern[str]
    dont_know_always: re.Pattern[str]
    dont_know_plain: re.Pattern[str]
    missing_code_min: float


def _alternation(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    raw = yaml.safe_load(resources.files("opinionbench.resources").joinpath("answer_classes.yaml").read_text())
    return _Rules(
        refused=_alternation(raw["refused"]),
        no_answer=_alternation(raw["no_answer"]),
        dont_know_always=_alternation(raw["dont_know_always"]),
        dont_know_plain=_alternation(raw["dont_know_plain"]),
        missing_code_min=float(raw["missing_code_min"]),
    )


def normalise(label: str) -> str:
    """Case, curly quotes and runs of spaces folded: how the rules file writes labels."""
    text = str(label).replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip().lower()


def answer_class(label: str, code: float | None = None, convention: AnswerConvention = "pew") -> str:
    """`substantive`, or which non-answer the label is: `refused`, `no_answer` or `dont_know`.

    `code` is the answer's value code; None (a printed questionnaire, an imported release)
    means unknown, and a plain "Don't know" is then taken as a non-answer.
    """
    text = normalise(label)
    rules = _rules()
    if convention == "opinionqa":
        return "refused" if text == "refused" else SUBSTANTIVE
    if rules.refused.fullmatch(text):
        return "refused"
    if rules.no_answer.fullmatch(text):
        return "no_answer"
    if rules.dont_know_always.fullmatch(text):
        return "dont_know"
    if rules.dont_know_plain.fullmatch(text):
        missing_code = code is None or (not math.isnan(code) and code >= rules.missing_code_min)
        return "dont_know" if missing_code else SUBSTANTIVE
    return SUBSTANTIVE


def is_substantive(label: str, code: float | None = None, convention: AnswerConvention = "pew") -> bool:
    return answer_class(label, code, convention) == SUBSTANTIVE


def label_report(options: Iterable[list[str]], nonsubstantive: Iterable[list[str]]) -> dict:
    """What the rule did over a build: every non-answer label (with its question count), and
    every kept option that mentions not knowing — the two lists a reviewer checks."""
    removed: Counter[str] = Counter(label for labels in nonsubstantive for label in labels)
    kept = Counter(label for labels in options for label in labels if _MENTIONS_NOT_KNOWING.search(normalise(label)))
    return {
        "nonsubstantive_labels": [
            {"label": label, "class": answer_class(label), "questions": n} for label, n in removed.most_common()
        ],
        "kept_dont_know_labels": [{"label": label, "questions": n} for label, n in kept.most_common()],
    }
