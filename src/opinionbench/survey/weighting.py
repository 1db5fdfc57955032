"""Weighted answer distributions per (question, attribute, group), vectorised with bincount.

Each respondent belongs to one cell per attribute (plus Overall). Encoding the (respondent,
cell) memberships once per wave as a matrix lets a block of questions be tallied with one matrix
product, which is what keeps the build close to the cost of reading the files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opinionbench.survey.demographics import HarmonisedAttribute
from opinionbench.tables import OVERALL


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
    codes = np.asarray(list(option_codes) + list(refusal_codes), dtype=float)
    targets = np.concatenate([np.arange(len(option_codes)), np.full(len(refusal_codes), len(option_codes))])
    order = np.argsort(codes)
    codes, targets = codes[order], targets[order]
    pos = np.clip(np.searchsorted(codes, answers), 0, len(codes) - 1)
    return np.where(codes[pos] == answers, targets[pos], -1).astype(np.int64)


@dataclass(frozen=True)
class QuestionCells:
    """Tallies of one question: the supported cells and their statistics, as arrays."""

    cells: np.ndarray
    probs: np.ndarray
    refusal_rate: np.ndarray
    n: np.ndarray
    n_eff: np.ndarray


def tally_questions(
    answers: list[np.ndarray],
    option_codes: list[list[float]],
    refusal_codes: list[list[float]],
    weights: np.ndarray,
    index: CellIndex,
    block_columns: int = 1024,
) -> list[QuestionCells]:
    """Weighted tallies of many questions for every cell that has a substantive answer.

    Why a matrix product: each respondent sits in ~13 cells (Overall + one group per
    attribute); writing each question's answers as one-hot columns (weight, weight², count) and
    multiplying by the respondent×cell membership matrix tallies a block of questions in one BLAS
    call, instead of gathering 13 copies of every answer per question.

    `probs` are weighted shares over the substantive options (refusals excluded, as OpinionQA
    does); `refusal_rate` is the weighted share of refusals among all who were asked and answered
    anything; `n` counts substantive answers and `n_eff` is their Kish effective size.
    """
    n = len(weights)
    membership = np.zeros((n, len(index.names)))
    membership[index.rows, index.cells] = 1.0
    widths = [len(c) + 1 for c in option_codes]
    out: list[QuestionCells] = []
    start = 0
    while start < len(answers):
        stop = start
        while stop < len(answers) and (stop == start or sum(widths[start : stop + 1]) <= block_columns):
            stop += 1
        total = sum(widths[start:stop])
        onehot = np.zeros((n, 3 * total))
        offset = 0
        for i in range(start, stop):
            kk = answer_index(answers[i], option_codes[i], refusal_codes[i])
            rows = np.flatnonzero((kk >= 0) & (weights > 0))
            cols = offset + kk[rows]
            onehot[rows, cols] = weights[rows]
            onehot[rows, total + cols] = weights[rows] ** 2
            onehot[rows, 2 * total + cols] = 1.0
            offset += widths[i]
        sums = membership.T @ onehot
        offset = 0
        for i in range(start, stop):
            k = widths[i] - 1
            sl = slice(offset, offset + k + 1)
            out.append(_cells_from_sums(sums[:, sl], sums[:, total:][:, sl], sums[:, 2 * total:][:, sl], k))
            offset += widths[i]
        start = stop
    return out


def _cells_from_sums(sum_w: np.ndarray, sum_w2: np.ndarray, count: np.ndarray, k: int) -> QuestionCells:
    sub_n = np.rint(count[:, :k].sum(axis=1)).astype(np.int64)
    supported = np.flatnonzero(sub_n > 0)
    sub_w = sum_w[supported, :k].sum(axis=1)
    return QuestionCells(
        cells=supported,
        probs=sum_w[supported, :k] / sub_w[:, None],
        refusal_rate=sum_w[supported, k] / sum_w[supported].sum(axis=1),
        n=sub_n[supported],
        n_eff=kish_effective_n(sub_w, sum_w2[supported, :k].sum(axis=1)),
    )


def cells_frame(qkeys: list[str], tallies: list[QuestionCells], index: CellIndex) -> pd.DataFrame:
    """One distributions frame for many questions, assembled once (not a frame per question)."""
    if not tallies:
        return pd.DataFrame(columns=["qkey", "attribute", "group", "probs", "refusal_rate", "n", "n_eff"])
    cells = np.concatenate([t.cells for t in tallies])
    attributes = np.array([a for a, _ in index.names], dtype=object)
    groups = np.array([g for _, g in index.names], dtype=object)
    probs: list[np.ndarray] = []
    for t in tallies:
        probs.extend(t.probs)
    return pd.DataFrame(
        {
            "qkey": np.repeat(np.array(qkeys, dtype=object), [len(t.cells) for t in tallies]),
            "attribute": attributes[cells],
            "group": groups[cells],
            "probs": probs,
            "refusal_rate": np.concatenate([t.refusal_rate for t in tallies]),
            "n": np.concatenate([t.n for t in tallies]),
            "n_eff": np.concatenate([t.n_eff for t in tallies]),
        }
    )
