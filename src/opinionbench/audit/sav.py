"""What the audits need from one wave: its codebook (OpinionQA's answer convention) and, on
demand, the answer counts of some columns — read per wave, so memory stays one wave's worth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyreadstat

from opinionbench.errors import SurveyError
from opinionbench.survey.codebook import QuestionEntry, extract_codebook


@dataclass
class WaveCodebook:
    path: Path
    questions: dict[str, QuestionEntry]   # qkey -> entry (OpinionQA convention: only "Refused" removed)
    skipped: dict[str, str]               # column -> why it is not a question
    columns_upper: dict[str, str]         # COLUMN -> Column, for release codes written in another case


def read_codebook(path: Path) -> WaveCodebook:
    """The wave's codebook from the file's metadata only (no answers read: fast)."""
    try:
        _, meta = pyreadstat.read_sav(str(path), metadataonly=True)
    except Exception as exc:  # pyreadstat raises its own error types
        raise SurveyError(f"{path}: not a readable SPSS .sav file ({str(exc).strip().splitlines()[0]})") from None
    string_cols = {c for c, kind in (meta.readstat_variable_types or {}).items() if kind == "string"}
    weight_cols = {c for c in meta.column_names if c.upper().startswith("WEIGHT")}
    book = extract_codebook(path.stem, list(meta.column_names), meta.column_names_to_labels,
                            meta.variable_value_labels, string_cols, weight_cols, "opinionqa")
    return WaveCodebook(path, {q.qkey: q for q in book.questions}, dict(book.skipped),
                        {c.upper(): c for c in meta.column_names})


def answer_counts(path: Path, entries: list[QuestionEntry]) -> dict[str, dict[str, int]]:
    """qkey -> {option label: respondents who chose it} (unweighted), every labelled answer included."""
    if not entries:
        return {}
    frame, _ = pyreadstat.read_sav(str(path), usecols=[q.qkey for q in entries])
    out = {}
    for q in entries:
        values = frame[q.qkey].to_numpy(dtype=float)
        codes = list(q.option_codes) + list(q.refusal_codes)
        labels = list(q.options) + list(q.refusal_options)
        out[q.qkey] = {label: int(np.count_nonzero(values == code)) for code, label in zip(codes, labels)}
    return out


def wave_files(waves_dir: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(Path(waves_dir).glob("W*.sav"))}
