"""Explained, counted exclusions: what leaves the benchmark before the expectations run.

Two kinds, both reported per reason: questions that are not survey questions (reviewed rules in
`expectations/exclusions.yaml`), and cells whose Kish effective n is below `validate.min_n_eff`
(too few respondents for a distribution worth comparing against). A question whose Overall cell
is dropped leaves with all its cells. Nothing is silently lost: every dropped item is listed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opinionbench.errors import ConfigError
from opinionbench.io import read_structured
from opinionbench.tables import OVERALL

LOW_N_EFF = "Overall effective n below validate.min_n_eff"
NO_OVERALL = "no Overall distribution in the build (no substantive answer with a positive weight)"
TOO_MANY_OPTIONS = "more than validate.max_options substantive options (coded open ends, long lists)"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    reason: str = Field(min_length=3)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value


class ExclusionRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wording_patterns: list[_Rule] = Field(default_factory=list)
    qkeys: dict[str, str] = Field(default_factory=dict)


def load_rules(path: Path) -> ExclusionRules:
    if not Path(path).exists():
        return ExclusionRules()
    raw = read_structured(path, kind="yaml", error=ConfigError) or {}
    try:
        return ExclusionRules.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@dataclass
class Exclusions:
    questions: dict[str, str] = field(default_factory=dict)  # qkey -> reason
    cells_dropped_low_n_eff: int = 0
    stale_qkeys: list[str] = field(default_factory=list)  # named in exclusions.yaml, absent from the build

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.questions.values()).most_common())


def apply_exclusions(
    questions: pd.DataFrame, distributions: pd.DataFrame, rules: ExclusionRules, min_n_eff: float,
    max_options: int,
) -> tuple[pd.DataFrame, pd.DataFrame, Exclusions]:
    """(kept questions, kept cells, what was excluded and why)."""
    out = Exclusions()
    out.stale_qkeys = sorted(set(rules.qkeys) - set(questions["qkey"]))
    compiled = [(re.compile(r.pattern), r.reason) for r in rules.wording_patterns]
    for qkey, wording in zip(questions["qkey"], questions["question"].fillna("")):
        if qkey in rules.qkeys:
            out.questions[qkey] = rules.qkeys[qkey]
            continue
        for pattern, reason in compiled:
            if pattern.search(str(wording)):
                out.questions[qkey] = reason
                break
    for qkey, options in zip(questions["qkey"], questions["options"]):
        if len(options) > max_options:
            out.questions.setdefault(qkey, TOO_MANY_OPTIONS)
    low = distributions["n_eff"].astype(float) < float(min_n_eff)
    overall = (distributions["attribute"] == OVERALL) & (distributions["group"] == OVERALL)
    for qkey in distributions.loc[low & overall, "qkey"]:
        out.questions.setdefault(qkey, LOW_N_EFF)
    for qkey in set(questions["qkey"]) - set(distributions.loc[overall, "qkey"]):
        out.questions.setdefault(qkey, NO_OVERALL)
    kept_q = questions[~questions["qkey"].isin(out.questions)].reset_index(drop=True)
    in_kept = distributions["qkey"].isin(set(kept_q["qkey"]))
    out.cells_dropped_low_n_eff = int((low & in_kept).sum())
    kept_d = distributions[in_kept & ~low].reset_index(drop=True)
    return kept_q, kept_d, out
