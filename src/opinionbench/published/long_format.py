"""A documented generic format for predictions made elsewhere (importer `long`).

A CSV, JSONL or parquet file with the columns
`dataset, qkey, attribute, group, model, method, steering` (our names: `method` one of
`opinionbench.elicit.methods`, `steering` one of `opinionbench.steering.steerings`; an unsteered
answer is attribute `Overall`, group `Overall`), and the probabilities in one of three ways:
- `option` + `probability`: one row per option, by the dataset's option label;
- `option_index` + `probability`: one row per option, by its 0-based position in the dataset's options;
- `probs`: one row per cell, the list in the dataset's option order (JSON text in a CSV).
Optional: `calibrated` (true when the source temperature-scaled the run itself), `raw_reply`,
`model_id`. A label the dataset keeps apart as a refusal goes to `out_of_option_mass`, as does
whatever the given probabilities leave below 1; the rest is renormalised over the options.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from opinionbench.elicit import methods
from opinionbench.published import importers
from opinionbench.published.common import DatasetCatalog, ImportResult, PredictionImportError, RunKey, failure, map_to_options
from opinionbench.steering import steerings

NAME = "long"
KEY_COLUMNS = ["dataset", "qkey", "attribute", "group", "model", "method", "steering"]
PROBABILITY_FORMS = (("option", "probability"), ("option_index", "probability"), ("probs",))


def read_long(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise PredictionImportError(f"{path}: not .csv, .jsonl or .parquet")
    except FileNotFoundError:
        raise PredictionImportError(f"{path}: not found") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictionImportError(f"{path}: not readable ({str(exc).splitlines()[0]})") from None
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise PredictionImportError(f"{path}: missing columns {missing} (see opinionbench.published.long_format)")
    if not any(all(c in frame.columns for c in form) for form in PROBABILITY_FORMS):
        raise PredictionImportError(f"{path}: needs `option`+`probability`, `option_index`+`probability` or `probs`")
    return frame


def _probs(value: object) -> list[float]:
    if isinstance(value, str):
        value = json.loads(value)
    return [float(v) for v in value]


@importers.register(NAME)
def import_long(source: Path, datasets: DatasetCatalog) -> ImportResult:
    path = Path(source)
    frame = read_long(path)
    result = ImportResult(NAME, path)
    result.files["found"] = result.files["imported"] = 1
    if "calibrated" not in frame.columns:
        frame["calibrated"] = False
    frame["calibrated"] = frame["calibrated"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))
    by_label = "option" in frame.columns and "probability" in frame.columns
    by_index = not by_label and "option_index" in frame.columns and "probability" in frame.columns
    cell_key = [*KEY_COLUMNS, "calibrated"]
    for values, rows in frame.groupby(cell_key, sort=True, dropna=False):
        dataset, qkey, attribute, group, model, method, steering = map(str, values[:-1])
        calibrated = bool(values[-1])
        key = RunKey(dataset, model, method, steering, calibrated)
        result.run_metadata[key] = {"calibrated_by": "source" if calibrated else None}
        first = rows.iloc[0]
        raw = first.get("raw_reply") if "raw_reply" in rows else None
        model_id = str(first["model_id"]) if "model_id" in rows and pd.notna(first["model_id"]) else None
        view = datasets.get(dataset)
        error = None
        if method not in methods:
            error = failure("malformed_entry", f"method {method!r} is not one of {list(methods.names())}")
        elif steering not in steerings:
            error = failure("malformed_entry", f"steering {steering!r} is not one of {list(steerings.names())}")
        elif view is None:
            error = failure("question_not_in_dataset", f"dataset {dataset!r} is not imported (datasets.out_dir)")
        elif qkey not in view.options:
            error = failure("question_not_in_dataset", f"{qkey} not in {dataset}")
        elif not view.has_group(qkey, attribute, group):
            error = failure("group_not_in_dataset", f"{attribute}/{group} not in {dataset}")
        pairs: list[tuple[str, float]] = []
        if error is None:
            options = view.options[qkey]
            try:
                if by_label:
                    pairs = [(str(o), float(p)) for o, p in zip(rows["option"], rows["probability"])]
                elif by_index:
                    for index, p in zip(rows["option_index"], rows["probability"]):
                        if not 0 <= int(index) < len(options):
                            error = failure("option_not_in_dataset", f"option_index {int(index)} of {len(options)} options")
                            break
                        pairs.append((options[int(index)], float(p)))
                else:
                    listed = _probs(first["probs"])
                    if len(rows) > 1 or len(listed) != len(options):
                        error = failure("letters_do_not_match_options",
                                        f"{len(listed)} probabilities for {len(options)} options (or the cell repeated)")
                    pairs = list(zip(options, listed))
            except (TypeError, ValueError) as exc:
                error = failure("malformed_entry", f"probabilities not numeric ({exc})")
        probs, outside = None, math.nan
        if error is None:
            probs, outside, error = map_to_options(pairs, view, qkey, sums_to_one=False)
        result.add(key, qkey, attribute, group, path.name, probs=probs, out_of_option_mass=outside,
                   raw_reply=None if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw),
                   error=error, model_id=model_id)
    return result
