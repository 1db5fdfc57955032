"""What the audits need from one wave: its codebook (OpinionQA's answer convention) and, on
demand, the answer counts of some columns — read per wave, so memory stays one wave's worth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opinionbench.survey.codebook import QuestionEntry
from opinionbench.survey.wave import codebook_from_metadata, read_sav


@dataclass
class WaveCodebook:
    path: Path
    questions: dict[str, QuestionEntry]   # qkey -> entry (OpinionQA convention: only "Refused" removed)
    skipped: dict[str, str]               # column -> why it is not a question
    columns_upper: dict[str, str]         # COLUMN -> Column, for release codes written in another case


def read_codebook(path: Path) -> WaveCodebook:
    """The wave's codebook from the file's metadata only (no answers read: fast)."""
    _, meta = read_sav(path, metadataonly=True)
    book = codebook_from_metadata(path.stem, meta, "opinionqa")
    return WaveCodebook(path, {q.qkey: q for q in book.questions}, dict(book.skipped),
                        {c.upper(): c for c in meta.column_names})


def label_counts(values: np.ndarray, entry: QuestionEntry) -> dict[str, int]:
    """{answer label: respondents who gave it} (unweighted) over `values`, every labelled answer included."""
    codes = [*entry.option_codes, *entry.refusal_codes]
    labels = [*entry.options, *entry.refusal_options]
    return {label: int(np.count_nonzero(values == code)) for code, label in zip(codes, labels)}


def answer_counts(path: Path, entries: list[QuestionEntry]) -> dict[str, dict[str, int]]:
    """qkey -> its `label_counts` over every respondent of the wave."""
    if not entries:
        return {}
    frame, _ = read_sav(path, usecols=[q.qkey for q in entries])
    return {q.qkey: label_counts(frame[q.qkey].to_numpy(dtype=float), q) for q in entries}


def wave_files(waves_dir: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(Path(waves_dir).glob("W*.sav"))}
