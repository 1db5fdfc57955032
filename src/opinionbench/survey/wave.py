"""A wave = one ATP `.sav` file read once: codebook, respondents' answers, weights, groups."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import yaml

from opinionbench.errors import SurveyError
from opinionbench.survey.answer_classes import AnswerConvention
from opinionbench.survey.codebook import Codebook, extract_codebook
from opinionbench.survey.demographics import HarmonisedAttribute, harmonise
from opinionbench.survey.weighting import build_cell_index, cells_frame, tally_questions
from opinionbench.tables import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS



@dataclass
class Wave:
    """Everything the build needs from one wave, with the questions table ready to use."""

    path: Path
    wave: str
    weight_column: str
    codebook: Codebook
    answers: pd.DataFrame
    weights: np.ndarray
    attributes: list[HarmonisedAttribute]
    wave_start: str | None = None
    wave_end: str | None = None
    topic: str | None = None
    questions: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.questions = _questions_frame(self)

    @property
    def skipped(self) -> dict[str, str]:
        return self.codebook.skipped


def wave_id(path: Path) -> str:
    """`W54.sav` → `W54`; the id is also the column suffix (`SPORTPOL_W54`)."""
    stem = path.stem
    if not re.fullmatch(r"W\d+(\.\d+)?", stem):
        raise SurveyError(f"{path}: file name must be the wave id, like W54.sav")
    return stem


@lru_cache(maxsize=1)
def _weight_overrides() -> dict[str, str]:
    return yaml.safe_load(resources.files("opinionbench.resources").joinpath("weights.yaml").read_text()) or {}


def choose_weight_column(path: Path, wave: str, columns: list[str]) -> str:
    """`WEIGHT_<wave>`, else the override file's choice, else the only WEIGHT_* column."""
    candidates = [c for c in columns if c.upper().startswith("WEIGHT")]
    if f"WEIGHT_{wave}" in candidates:
        return f"WEIGHT_{wave}"
    chosen = _weight_overrides().get(wave)
    if chosen:
        if chosen not in candidates:
            raise SurveyError(f"{path}: weight column {chosen} (resources/weights.yaml) is not in the file")
        return chosen
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SurveyError(f"{path}: no weight column (expected WEIGHT_{wave})")
    raise SurveyError(f"{path}: ambiguous weight columns {candidates}; choose one in resources/weights.yaml")


def _skip_unanswered(book: Codebook, frame: pd.DataFrame, weights: np.ndarray) -> None:
    """A question nobody with a positive weight answered has no distribution: skip it, say why.

    (E.g. W48.5's veterans items: only the veterans sample answered them, and the general
    population weight is missing for that sample.)
    """
    kept = []
    for q in book.questions:
        answered = frame[q.qkey].isin(q.option_codes).to_numpy() & (weights > 0)
        if answered.any():
            kept.append(q)
        else:
            book.skipped[q.qkey] = f"no substantive answer with a positive {q.wave} weight"
    book.questions = kept


def _dates(frame: pd.DataFrame, wave: str) -> tuple[str | None, str | None]:
    start_col, end_col = f"INTERVIEW_START_{wave}", f"INTERVIEW_END_{wave}"
    out = []
    for col, fn in ((start_col, "min"), (end_col, "max")):
        if col in frame.columns:
            values = pd.to_datetime(frame[col], errors="coerce")
            value = getattr(values, fn)()
            out.append(None if pd.isna(value) else value.date().isoformat())
        else:
            out.append(None)
    return out[0], out[1]


def read_sav(path: Path, **options):
    """`pyreadstat.read_sav` with its failures as one line naming the file (frame, metadata)."""
    try:
        return pyreadstat.read_sav(str(path), **options)
    except Exception as exc:  # pyreadstat raises its own ReadstatError/PyreadstatError types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SurveyError(f"{path}: not a readable SPSS .sav file ({reason})") from None


def codebook_from_metadata(wave: str, meta, answer_classes: AnswerConvention = "pew") -> Codebook:
    """The wave's codebook from its SPSS metadata alone (no answers needed)."""
    string_cols = {c for c, kind in (meta.readstat_variable_types or {}).items() if kind == "string"}
    weight_cols = {c for c in meta.column_names if c.upper().startswith("WEIGHT")}
    return extract_codebook(wave, list(meta.column_names), meta.column_names_to_labels, meta.variable_value_labels,
                            string_cols, weight_cols, answer_classes)


def load_wave(path: str | Path, weight_column: str | None = None, answer_classes: AnswerConvention = "pew") -> Wave:
    """Read a wave's `.sav` once and extract its codebook and harmonised demographics.

    Raises SurveyError with one line naming the file and the problem for anything that makes
    the wave unusable (unreadable file, no weights, unknown demographic code).
    """
    path = Path(path)
    wave = wave_id(path)
    frame, meta = read_sav(path, dates_as_pandas_datetime=True)
    weight = weight_column or choose_weight_column(path, wave, list(frame.columns))
    if weight not in frame.columns:
        raise SurveyError(f"{path}: weight column {weight} not found")
    weights = pd.to_numeric(frame[weight], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    if not np.any(weights > 0):
        raise SurveyError(f"{path}: weight column {weight} has no positive weights")
    book = codebook_from_metadata(wave, meta, answer_classes)
    _skip_unanswered(book, frame, weights)
    attributes = harmonise(str(path), frame, meta.variable_value_labels)
    start, end = _dates(frame, wave)
    qcols = [q.qkey for q in book.questions]
    answers = frame[qcols]  # labelled (numeric) columns only: extract_codebook skipped the rest
    return Wave(
        path=path,
        wave=wave,
        weight_column=weight,
        codebook=book,
        answers=answers,
        weights=weights,
        attributes=attributes,
        wave_start=start,
        wave_end=end,
        topic=(meta.file_label or None),
    )


def _questions_frame(wave: Wave) -> pd.DataFrame:
    rows = [
        {
            "qkey": q.qkey,
            "wave": q.wave,
            "qcode": q.qcode,
            "question": q.question,
            "options": q.options,
            "option_codes": q.option_codes,
            "refusal_options": q.refusal_options,
            "refusal_codes": q.refusal_codes,
            "ordinal": q.ordinal,
            "weight_column": wave.weight_column,
            "survey": f"Pew_American_Trends_Panel_{wave.wave}",
            "wave_start": wave.wave_start,
            "wave_end": wave.wave_end,
            "topic": wave.topic,
            "text_source": "codebook",
            "source_file": wave.path.name,
        }
        for q in wave.codebook.questions
    ]
    return pd.DataFrame(rows, columns=QUESTION_COLUMNS)


def distributions(wave: Wave) -> pd.DataFrame:
    """Weighted distributions for Overall and every OpinionQA group the wave's data supports."""
    index = build_cell_index(len(wave.weights), wave.attributes)
    questions = wave.codebook.questions
    tallies = tally_questions(
        [wave.answers[q.qkey].to_numpy(dtype=float) for q in questions],
        [q.option_codes for q in questions],
        [q.refusal_codes for q in questions],
        wave.weights,
        index,
    )
    return cells_frame([q.qkey for q in questions], tallies, index)[DISTRIBUTION_COLUMNS]
