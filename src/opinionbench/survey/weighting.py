"""Weighted answer distributions per (question, attribute, group), vectorised with bincount.

Each respondent belongs to one cell per attribute (plus Overall). Flattening the
(respondent, cell) memberships once per wave lets every question be tallied with a single
`np.bincount`, which is what keeps the build close to the cost of reading the files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opinionbench.survey.demographics import HarmonisedAttribute

OVERALL = "Overall"


@dataclass(frozen=True)
class CellIndex:
    """Flattened respondent→cell memberships and the (attribute, group) name of each cell."""

    rows: np.ndarray
    cells: np.ndarray
    names: list[tuple[str, str]]


def build_cell_index(n_respondents: int, attributes: list[HarmonisedAttribute]) -> CellIndex:
    names: list[tuple[str, str]] = [(OVERALL, OVERALL)]
    rows = [np.arange(n_respondents)]
    cells = [np.zeros(n_respondents, dtype=np.int64)]
    for attr in attributes:
        offset = len(names)
        names.extend((attr.name, g) for g in attr.groups)
        member = np.flatnonzero(attr.codes >= 0)
        rows.append(member)
        cells.append(attr.codes[member].astype(np.int64) + offset)
    return CellIndex(np.concatenate(rows), np.concatenate(cells), names)


def kish_effective_n(sum_w: np.ndarray, sum_w2: np.ndarray) -> np.ndarray:
    """Kish's effective sample size (Σw)²/Σw²: how many equal-weight respondents a cell is worth."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sum_w2 > 0, sum_w**2 / sum_w2, 0.0)


def answer_index(answers: np.ndarray, option_codes: list[float], refusal_codes: list[float]) -> np.ndarray:
    """Code → 0..K-1 for substantive options, K for a refusal, -1 for missing or unlabelled."""
    k = len(option_codes)
    out = np.full(answers.shape, -1, dtype=np.int64)
    for i, code in enumerate(option_codes):
        out[answers == code] = i
    if refusal_codes:
        out[np.isin(answers, refusal_codes)] = k
    return out


def question_distributions(
    qkey: str,
    answers: np.ndarray,
    option_codes: list[float],
    refusal_codes: list[float],
    weights: np.ndarray,
    index: CellIndex,
) -> pd.DataFrame:
    """One row per cell with at least one substantive answer.

    `probs` are weighted shares over the substantive options (refusals excluded, as OpinionQA
    does); `refusal_rate` is the weighted share of refusals among all who were asked and answered
    anything; `n` counts substantive answers and `n_eff` is their Kish effective size.
    """
    k = len(option_codes)
    kk = answer_index(answers, option_codes, refusal_codes)[index.rows]
    w = weights[index.rows]
    keep = (kk >= 0) & (w > 0)
    flat = index.cells[keep] * (k + 1) + kk[keep]
    size = len(index.names) * (k + 1)
    wk = w[keep]
    sum_w = np.bincount(flat, weights=wk, minlength=size).reshape(-1, k + 1)
    sum_w2 = np.bincount(flat, weights=wk * wk, minlength=size).reshape(-1, k + 1)
    count = np.bincount(flat, minlength=size).reshape(-1, k + 1)
    sub_w = sum_w[:, :k].sum(axis=1)
    supported = np.flatnonzero(count[:, :k].sum(axis=1) > 0)
    probs = sum_w[supported, :k] / sub_w[supported, None]
    total_w = sum_w[supported].sum(axis=1)
    return pd.DataFrame(
        {
            "qkey": qkey,
            "attribute": [index.names[i][0] for i in supported],
            "group": [index.names[i][1] for i in supported],
            "probs": list(probs),
            "refusal_rate": sum_w[supported, k] / total_w,
            "n": count[supported, :k].sum(axis=1).astype(np.int64),
            "n_eff": kish_effective_n(sub_w[supported], sum_w2[supported, :k].sum(axis=1)),
        }
    )
