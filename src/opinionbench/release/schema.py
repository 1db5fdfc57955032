"""The released columns: one Arrow type and one description per column of the two tables.

Why here: the card's features, the Croissant fields and the parquet files are all written from
this one table, so they cannot disagree. The column names are `tables.QUESTION_COLUMNS` /
`DISTRIBUTION_COLUMNS` (their owner); a column added there without an entry here stops the
release with a one-line error instead of shipping an undocumented column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from opinionbench.errors import OpinionBenchError
from opinionbench.tables import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS


class ReleaseError(OpinionBenchError):
    """The dataset cannot be released as it is (a column without a description, bad metadata)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str


_S, _F = pa.string(), pa.float64()
_COLUMNS = {
    "questions": [
        Column("qkey", _S, "question key: <qcode>_<wave>, unique; joins the two configurations"),
        Column("wave", _S, "American Trends Panel wave id (e.g. W54)"),
        Column("qcode", _S, "the question's variable name in the wave's .sav file"),
        Column("question", _S, "the question's wording (codebook label, corrected questionnaire text, or audited release)"),
        Column("options", pa.list_(_S), "substantive answer options, in the order of their codes"),
        Column("option_codes", pa.list_(_F), "the .sav codes of `options`, aligned"),
        Column("refusal_options", pa.list_(_S), "non-answers (refused, no answer, volunteered don't know): not in `options`"),
        Column("refusal_codes", pa.list_(_F), "the .sav codes of `refusal_options`, aligned"),
        Column("ordinal", pa.list_(_F), "an ordinal position per option (OpinionQA's option_ordinal), aligned with `options`"),
        Column("weight_column", _S, "the survey weight variable used for the distributions"),
        Column("survey", _S, "survey name as in OpinionQA (Pew_American_Trends_Panel_<wave>)"),
        Column("wave_start", _S, "first field date of the wave, as the survey details give it (free text), when known"),
        Column("wave_end", _S, "last field date of the wave, as the survey details give it (free text), when known"),
        Column("topic", _S, "the wave's topic, when known"),
        Column("text_source", _S, "where `question` comes from: codebook | questionnaire | release"),
        Column("source_file", _S, "the .sav file the question was built from"),
    ],
    "distributions": [
        Column("qkey", _S, "question key (questions.qkey)"),
        Column("attribute", _S, "demographic attribute (POLPARTY, SEX, RACE, ...) or Overall"),
        Column("group", _S, "group of the attribute (e.g. Democrat) or Overall"),
        Column("probs", pa.list_(_F), "weighted share of each substantive option, aligned with questions.options; sums to 1"),
        Column("refusal_rate", _F, "weighted share of non-answers among the group's respondents asked"),
        Column("n", pa.int64(), "respondents of the group who gave a substantive answer (unweighted)"),
        Column("n_eff", _F, "Kish effective sample size of those answers under the weights"),
    ],
}
CONFIGS = tuple(_COLUMNS)


def columns(config: str) -> list[Column]:
    """The released columns of `config` (questions | distributions), checked against tables.py."""
    cols = _COLUMNS[config]
    owner = QUESTION_COLUMNS if config == "questions" else DISTRIBUTION_COLUMNS
    undocumented = [c for c in owner if c not in {col.name for col in cols}]
    if undocumented:
        raise ReleaseError(f"release/schema.py: {config}: no type/description for columns {undocumented}")
    return cols


def to_arrow(frame: pd.DataFrame, config: str) -> pa.Table:
    """The table with exactly the released columns, in order, with their Arrow types."""
    cols = columns(config)
    missing = [c.name for c in cols if c.name not in frame.columns]
    if missing:
        raise ReleaseError(f"{config}: the dataset lacks columns {missing}")
    schema = pa.schema([pa.field(c.name, c.type) for c in cols])
    data = {c.name: [_plain(v) for v in frame[c.name].tolist()] for c in cols}
    return pa.Table.from_pydict(data, schema=schema)


def _plain(value):
    """numpy arrays and scalars as Python lists/values; NaN-like missing values as None."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return None if pd.isna(value) else value
