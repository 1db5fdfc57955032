"""Global Values: 100 contentious GlobalOpinionQA questions with per-country answer shares.

`Global_Values/data/data.json` maps the question text to per-country share vectors aligned with
`MC_options` (a Python-literal list that is the union of the options asked in each country, so
a country has zeros on the variants it was not asked). Groups are countries (attribute COUNTRY);
there is no Overall: pooling countries would describe no population. Options are nominal, so
`ordinal` is their list position (as OpinionQA does for unordered questions): prefer TV and
Jensen–Shannon on this dataset.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from opinionbench.datasets import importers
from opinionbench.datasets.common import DatasetImportError, ImportedDataset, QuestionRecord, build_tables, read_json

ATTRIBUTE = "COUNTRY"


def question_qkey(text: str) -> str:
    return f"GV_{hashlib.sha1(text.encode()).hexdigest()[:10]}"


@importers.register("global_values")
def import_global_values(root: Path) -> ImportedDataset:
    path = root / "Global_Values" / "data" / "data.json"
    data = read_json(path)
    records = []
    for text, entry in data.items():
        try:
            options = [str(o) for o in ast.literal_eval(entry["MC_options"])]
            countries = list(entry["countries"])
        except (KeyError, ValueError, SyntaxError, TypeError):
            raise DatasetImportError(f"{path}: {text[:60]!r}: MC_options/countries missing or unparsable") from None
        counts = {}
        for country in countries:
            shares = entry.get(country)
            if not isinstance(shares, list) or len(shares) != len(options):
                raise DatasetImportError(f"{path}: {text[:60]!r}: {country}: {len(shares or [])} shares for {len(options)} options")
            counts[(ATTRIBUTE, country)] = dict(zip(options, map(float, shares)))
        records.append(QuestionRecord(qkey=question_qkey(text), question=text, all_options=options, counts=counts,
                                      survey="GlobalOpinionQA"))
    questions, distributions = build_tables(records, str(path), add_overall_from=None)
    return ImportedDataset(name="global_values", questions=questions, distributions=distributions, source=str(path))
