"""The contentious OpinionQA subsets (100 and 500 questions) of the distributional-alignment release.

Layout: `opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_<N>/` with
`{POLPARTY,SEX,RACE}_data.json` (question key → options, text and per-group weighted answer
totals), `info.csv` (key, options, `option_ordinal`, survey) and
`question_similarity_top10.json`. The data JSON files define the question set: the 100-subset's
own `info.csv` lists a different set of keys, so question metadata is looked up in the
`info.csv` of both subsets. Overall = the sum over all POLPARTY groups (including "Refused").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from opinionbench.datasets import importers
from opinionbench.datasets.common import (
    DatasetImportError, ImportedDataset, QuestionRecord, build_tables, is_refusal, read_csv, read_json,
)
from opinionbench.datasets.human import human_annotations

ATTRIBUTES = ("POLPARTY", "SEX", "RACE")
SUBSET_DIR = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_{size}"


def _literal(value: object, where: str) -> object:
    try:
        return ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        raise DatasetImportError(f"{where}: cannot parse {str(value)[:60]!r}") from None


def _refusals_matching(options: list[str], ordinal: list[float] | None) -> list[str] | None:
    """The refusal options under which the release's ordinal has one value per substantive option.

    OpinionQA counts only "Refused" as a refusal for most questions, but some ordinals also
    leave out "Not sure"/"Don't know"-type options; the ordinal's length says which rule it used.
    """
    strict = [o for o in options if o == "Refused"]
    if ordinal is None or len(ordinal) == len(options) - len(strict):
        return strict
    broad = [o for o in options if is_refusal(o)]
    return broad if len(ordinal) == len(options) - len(broad) else None


def _unquote(option: str, answered: set[str]) -> str:
    bare = option.strip().strip('"')
    return bare if option not in answered and bare in answered else option


def rejoin_split_options(options: list[str], answered: set[str]) -> list[str]:
    """Undo the release's comma splitting of option labels ("Important", "but lower priority").

    When adjacent pieces joined by ", " form a label that respondents actually answered, they
    are one option. Labels already answered are left alone.
    """
    out: list[str] = []
    i = 0
    while i < len(options):
        merged = None
        for j in range(len(options), i + 1, -1):
            candidate = ", ".join(options[i:j])
            if candidate in answered and options[i] not in answered:
                merged = (candidate, j)
                break
        if merged:
            out.append(merged[0])
            i = merged[1]
        else:
            out.append(options[i])
            i += 1
    return out


def _question_info(root: Path) -> pd.DataFrame:
    frames = []
    for size in (500, 100):
        path = root / SUBSET_DIR.format(size=size) / "info.csv"
        if path.exists():
            frame = read_csv(path)
            missing = {"key", "question", "references", "option_ordinal", "survey"} - set(frame.columns)
            if missing:
                raise DatasetImportError(f"{path}: missing columns {sorted(missing)}")
            frames.append(frame.assign(_file=str(path)))
    if not frames:
        raise DatasetImportError(f"{root / SUBSET_DIR.format(size='*')}/info.csv: not found")
    return pd.concat(frames).drop_duplicates("key").set_index("key")


def import_opinionqa_subset(root: Path, size: int) -> ImportedDataset:
    directory = root / SUBSET_DIR.format(size=size)
    data = {a: read_json(directory / f"{a}_data.json") for a in ATTRIBUTES}
    info = _question_info(root)
    similar = read_json(directory / "question_similarity_top10.json")
    keys = list(data["POLPARTY"])
    records = []
    for key in keys:
        entry = data["POLPARTY"][key]
        where = f"{directory / 'POLPARTY_data.json'}: {key}"
        if "MC_options" not in entry or "question_text" not in entry:
            raise DatasetImportError(f"{where}: lacks MC_options/question_text")
        counts = {}
        for attribute in ATTRIBUTES:
            item = data[attribute].get(key)
            if item is None:
                raise DatasetImportError(f"{directory / f'{attribute}_data.json'}: {key}: missing")
            counts.update({(attribute, g): c for g, c in item.items() if isinstance(c, dict)})
        answered = {label for c in counts.values() for label in c}
        options = rejoin_split_options([_unquote(str(o), answered) for o in entry["MC_options"]], answered)
        ordinal = None
        wave = key.rsplit("_", 1)[-1] if "_W" in key else ""
        survey = f"Pew_American_Trends_Panel_{wave}" if wave else ""
        if key in info.index:
            row = info.loc[key]
            references = [str(r) for r in _literal(row["references"], f"{row['_file']}: {key}: references")]
            if answered <= set(references):
                options = references  # info.csv keeps labels intact where MC_options split or quoted them
            if references == options:
                ordinal = [float(v) for v in _literal(row["option_ordinal"], f"{row['_file']}: {key}: option_ordinal")]
        refusals = _refusals_matching(options, ordinal)
        if refusals is None:  # the release's ordinal fits no refusal rule: fall back to option order
            ordinal, refusals = None, [o for o in options if o == "Refused"]
            survey = str(row["survey"])
        records.append(QuestionRecord(
            qkey=key, question=str(entry["question_text"]), all_options=options, counts=counts, ordinal=ordinal,
            wave=wave, survey=survey, refusals=refusals, similar_qkeys=[k for k in similar.get(key, []) if k in data["POLPARTY"]],
        ))
    questions, distributions = build_tables(records, str(directory), add_overall_from="POLPARTY")
    return ImportedDataset(
        name=f"opinionqa_{size}", questions=questions, distributions=distributions,
        human_annotations=human_annotations(root, "OQA"), source=str(directory),
    )


@importers.register("opinionqa_100")
def import_opinionqa_100(root: Path) -> ImportedDataset:
    return import_opinionqa_subset(root, size=100)


@importers.register("opinionqa_500")
def import_opinionqa_500(root: Path) -> ImportedDataset:
    return import_opinionqa_subset(root, size=500)
