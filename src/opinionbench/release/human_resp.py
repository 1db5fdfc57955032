"""The release in OpinionQA's `human_resp` layout, for code written against OpinionQA's files.

    <dir>/<survey>/info.csv               key, option_mapping, question, references, option_ordinal, survey
    <dir>/<survey>/<ATTRIBUTE>_data.json  {key: {"MC_options", "question_text", <group>: {option: total}}}

`<survey>` is `Pew_American_Trends_Panel_<wave>`, as in OpinionQA. Lists are written as Python
literals (`"['Yes', 'No', 'Refused']"`) because that is how OpinionQA's `info.csv` holds them and
how its readers parse them (`ast.literal_eval`). `references` are the substantive options then
`Refused`; `option_ordinal` has one value per substantive option (OpinionQA's convention).

The totals are weighted: option i of a group gets `probs[i] * n` and `Refused` gets
`n * refusal_rate / (1 - refusal_rate)`, so they sum to the group's weighted answers scaled to its
respondent count, and normalising them gives back exactly our `probs` and `refusal_rate`.
(OpinionQA's own files hold unweighted counts; ours carry the survey weights.) The tables keep
one refusal rate per cell, so every non-answer is merged into `Refused` here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from opinionbench.release.schema import ReleaseError
from opinionbench.tables import OVERALL

REFUSED = "Refused"
INFO_COLUMNS = ["key", "option_mapping", "question", "references", "option_ordinal", "survey"]


def _floats(values) -> list[float]:
    return [float(v) for v in values] if values is not None else []


def _strings(values) -> list[str]:
    return [str(v) for v in values] if values is not None else []


def _references(q: dict) -> tuple[list[str], list[str]]:
    """(substantive options, references): the options then `Refused` when the question has non-answers."""
    options = _strings(q["options"])
    return options, options + ([REFUSED] if _strings(q["refusal_options"]) else [])


def _info_row(q: dict) -> dict:
    options, references = _references(q)
    ordinal = _floats(q["ordinal"]) or [float(i + 1) for i in range(len(options))]
    mapping = dict(zip(_floats(q["option_codes"]), options))
    mapping |= dict(zip(_floats(q["refusal_codes"]), _strings(q["refusal_options"])))
    return {"key": q["qkey"], "option_mapping": repr(mapping), "question": q["question"],
            "references": repr(references), "option_ordinal": repr(ordinal), "survey": q["survey"] or ""}


def _totals(options: list[str], with_refused: bool, probs, n: float, refusal_rate: float) -> dict[str, float]:
    out = {o: round(float(p) * float(n), 6) for o, p in zip(options, probs)}
    if with_refused:
        r = float(refusal_rate) if refusal_rate == refusal_rate else 0.0
        out[REFUSED] = round(float(n) * r / (1.0 - r), 6) if r < 1 else 0.0
    return out


def export_human_resp(questions: pd.DataFrame, distributions: pd.DataFrame, out_dir: Path,
                      attributes: list[str] | None = None) -> dict[str, int]:
    """Write one `<survey>/` directory per wave; returns {survey: questions written}.

    `attributes`: the `<ATTRIBUTE>_data.json` files written (default: every attribute of the
    dataset but Overall). Every question appears in every attribute's file, with the groups
    that have a distribution (OpinionQA's readers expect each key in each file).
    """
    known = sorted(set(distributions["attribute"].tolist()) - {OVERALL})
    attributes = known if attributes is None else list(attributes)
    unknown = [a for a in attributes if a not in known]
    if unknown:
        raise ReleaseError(f"params.yaml: release.attributes: {unknown} not in the dataset (known: {known})")
    cells: dict[tuple[str, str], dict[str, tuple]] = {}
    d = distributions[distributions["attribute"].isin(attributes)]
    for qkey, attribute, group, probs, rate, n in zip(d["qkey"].tolist(), d["attribute"].tolist(), d["group"].tolist(),
                                                      d["probs"].tolist(), d["refusal_rate"].tolist(), d["n"].tolist()):
        cells.setdefault((qkey, attribute), {})[group] = (probs, n, rate)
    written: dict[str, int] = {}
    for survey, frame in questions.groupby("survey", sort=True):
        records = frame.to_dict("records")
        directory = out_dir / str(survey)
        directory.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([_info_row(q) for q in records], columns=INFO_COLUMNS).to_csv(directory / "info.csv", index=False)
        for attribute in attributes:
            data = {}
            for q in records:
                options, references = _references(q)
                entry: dict = {"MC_options": references, "question_text": q["question"]}
                for group, (probs, n, rate) in sorted(cells.get((q["qkey"], attribute), {}).items()):
                    entry[group] = _totals(options, len(references) > len(options), probs, n, rate)
                data[q["qkey"]] = entry
            (directory / f"{attribute}_data.json").write_text(json.dumps(data, ensure_ascii=False) + "\n")
        written[str(survey)] = len(records)
    if not written:
        raise ReleaseError("release: the dataset has no questions to export")
    return written

