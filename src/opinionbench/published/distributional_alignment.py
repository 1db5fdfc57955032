"""The distributional-alignment release's model outputs, imported into our predictions schema.

Layout: `results/{opinionqa,nytimes,globalvalues}/<output type>/<model>/<task>/[<subset>/]<attribute>/<group>.json`,
any model directory name, any subset of output types and tasks. Each file maps a question key to
`avg_actual_results` (option letter → probability), `expected_results` (the release's human
distribution; `expected_results_<ATTR>_<GROUP>` for the unsteered task0) and the raw `response`.

Which option a letter stands for is what the prompt listed, and that differs by dataset (read
from the release's own data files, beside `results/`):
- OpinionQA: the *group's* answer labels in the order of its `{ATTR}_data.json` counts (sorted
  alphabetically, "Refused" included, labels nobody in the group chose left out); the
  unsteered task0 prompt used the Democrats' labels (file `NONE/Democrat.json`);
- NYT: the book's `MC_options`; Global Values: the question's `MC_options` (the union over the
  countries, "DK/Refused" included), and group file `<i>` is the question's i-th country.
Mass on a label the dataset keeps apart as a refusal becomes `out_of_option_mass`; the rest is
renormalised over the dataset's options. Output types map to methods: express_distribution →
verbalized, sequence → sequence, model_logprobs → logprobs; rescaled_model_logprobs → logprobs
marked `calibrated` (the release fitted its temperature on the very questions it scores), written
beside our own `calibrate` output. Tasks map to steerings: task0 → none, task1 → persona,
task3_easy_hard → few-shot.
"""

from __future__ import annotations

import ast
import json
import math
import re
import string
from functools import cache
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from opinionbench.datasets.global_values import ATTRIBUTE as COUNTRY
from opinionbench.datasets.global_values import question_qkey
from opinionbench.datasets.nytimes import book_qkey
from opinionbench.datasets.opinionqa import SUBSET_DIR
from opinionbench.published import importers
from opinionbench.published.common import (
    DatasetCatalog, ImportResult, PredictionImportError, RunKey, failure, map_to_options,
)
from opinionbench.tables import OVERALL

NAME = "distributional-alignment"
RELEASE_DATASETS = ("opinionqa", "nytimes", "globalvalues")
OPINIONQA_SUBSET = re.compile(r"^Pew_American_Trends_Panel_disagreement_(\d+)$")
OUTPUT_TYPES = {  # release output type → (our method, calibrated by the source, its letters sum to 1)
    "express_distribution": ("verbalized", False, True),  # stated shares (renormalised)
    "sequence": ("sequence", False, True),                 # letter counts / reply length (renormalised)
    "model_logprobs": ("logprobs", False, False),          # top-20 token probabilities: the rest is out of options
    "rescaled_model_logprobs": ("logprobs", True, True),
}
TASKS = {"task0": "none", "task1": "persona", "task3_easy_hard": "few-shot"}
UNSTEERED_DIR = "NONE"  # task0's attribute folder (its one file is NONE/Democrat.json)
IN_SAMPLE = ("in-sample: the release fitted the temperature on the same questions it scores "
             "(compare with our held-out `calibrate`)")


def literal(value: object, numbers: bool = False) -> object:
    """A field of the release: a Python literal in a string, or already parsed; `numbers`: a
    mapping of probabilities, where NaN is written bare (read as None)."""
    if not isinstance(value, str):
        return value
    return ast.literal_eval(re.sub(r"\bnan\b", "None", value) if numbers else value)


class ReleaseOptions:
    """The option labels each prompt listed, from the release's data files (read once each)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @cache  # noqa: B019  (one instance per import; the cache holds a few JSON files)
    def _json(self, relative: str) -> dict | None:
        path = self.root / relative
        if not path.exists():
            return None
        with open(path) as handle:
            return json.load(handle)

    def opinionqa(self, size: int, key: str, attribute: str, group: str) -> tuple[list[str] | None, str]:
        directory = SUBSET_DIR.format(size=size)
        attributes = ["POLPARTY", "SEX", "RACE"] if attribute == UNSTEERED_DIR else [attribute]
        for attr in attributes:
            data = self._json(f"{directory}/{attr}_data.json")
            counts = (data or {}).get(key, {}).get(group)
            if isinstance(counts, dict):
                return list(counts), ""
        return None, f"{self.root / directory}/{attributes[0]}_data.json has no counts for {key}/{group}"

    def opinionqa_counts(self, size: int, key: str, attribute: str, group: str) -> tuple[list[str], dict] | None:
        """(MC_options, the group's counts by label): what the paper's task0 scoring paired letters with."""
        data = self._json(f"{SUBSET_DIR.format(size=size)}/{attribute}_data.json") or {}
        entry = data.get(key) or {}
        if not isinstance(entry.get(group), dict) or "MC_options" not in entry:
            return None
        return [str(o) for o in entry["MC_options"]], dict(entry[group])

    def nytimes(self, title: str) -> tuple[list[str] | None, str]:
        entry = (self._json("nytimes/data.json") or {}).get(title)
        if entry is None:
            return None, f"{self.root / 'nytimes/data.json'} has no book {title[:60]!r}"
        return [str(o) for o in literal(entry["MC_options"])], ""

    def global_values(self, text: str) -> tuple[list[str] | None, list[str], str]:
        entry = (self._json("Global_Values/data/data.json") or {}).get(text)
        if entry is None:
            return None, [], f"{self.root / 'Global_Values/data/data.json'} has no question {text[:60]!r}"
        return [str(o) for o in literal(entry["MC_options"])], [str(c) for c in literal(entry["countries"])], ""


def _letters(avg: object) -> list[tuple[str, float]] | None:
    """(letter, probability) in letter order, or None when not a mapping of letters."""
    if not isinstance(avg, dict) or not avg or not all(isinstance(k, str) and k in string.ascii_uppercase for k in avg):
        return None
    return sorted(((k, math.nan if v is None else float(v)) for k, v in avg.items()),
                  key=lambda kv: string.ascii_uppercase.index(kv[0]))


class _File:
    """Where one results file sits in the layout, or why it is not a model-output file."""

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts, self.reason, self.detail = parts, None, ""
        if len(parts) == 1 or parts[0] == "human_annotations" or not parts[-1].endswith(".json"):
            self.reason, self.detail = "not_model_output", "/".join(parts)
            return
        if parts[0] not in RELEASE_DATASETS or len(parts) < 6:
            self.reason = "unknown_dataset"
            self.detail = f"{parts[0]}: not results/{{{','.join(RELEASE_DATASETS)}}}/<output type>/<model>/<task>/…"
            return
        self.release_dataset, self.output_type, self.model, self.task = parts[:4]
        self.attribute, self.group = parts[-2], Path(parts[-1]).stem
        self.size = None
        if self.output_type not in OUTPUT_TYPES:
            self.reason, self.detail = "unknown_output_type", self.output_type
        elif self.task not in TASKS:
            self.reason, self.detail = "unknown_task", self.task
        elif self.release_dataset == "opinionqa":
            match = OPINIONQA_SUBSET.match(parts[4]) if len(parts) == 7 else None
            if match is None:
                self.reason, self.detail = "unknown_dataset", "/".join(parts[4:-2]) or "no OpinionQA subset folder"
            else:
                self.size = int(match.group(1))
        elif len(parts) != 6:
            self.reason, self.detail = "unknown_dataset", "/".join(parts[4:-2])

    @property
    def dataset(self) -> str:
        return {"opinionqa": f"opinionqa_{self.size}", "nytimes": "nytimes", "globalvalues": "global_values"}[
            self.release_dataset]


def _expected_by_group(entry: dict, file: _File) -> dict[tuple[str, str], object]:
    """The release's truth for each group this cell is compared with (task0: every group)."""
    if file.task != "task0":
        return {(file.attribute, file.group): entry.get("expected_results")}
    prefix = "expected_results_"
    out = {}
    for name, value in entry.items():
        if name.startswith(prefix) and not name.startswith(prefix + UNSTEERED_DIR + "_"):
            attribute, _, group = name[len(prefix):].partition("_")
            out[(attribute, group)] = value
    if not out and "expected_results" in entry:  # e.g. a task0 file written like the steered ones
        out[(UNSTEERED_DIR, file.group)] = entry["expected_results"]
    return out


@importers.register(NAME)
def import_distributional_alignment(source: Path, datasets: DatasetCatalog) -> ImportResult:
    root = Path(source)
    results = root / "results"
    if not results.is_dir():
        raise PredictionImportError(f"{root}: no results/ folder (expected the distributional-alignment release)")
    result = ImportResult(NAME, root)
    options = ReleaseOptions(root)
    cells: list[dict] = []
    paths = sorted(p for p in results.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in tqdm(paths, desc="import release", unit="file", disable=None):
        relative = str(path.relative_to(root))
        result.files["found"] += 1
        file = _File(path.relative_to(results).parts)
        if file.reason is not None:
            result.fail_file(relative, file.reason, file.detail)
            continue
        view = datasets.get(file.dataset)
        if view is None:
            result.fail_file(relative, "dataset_not_imported", file.dataset)
            continue
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            result.fail_file(relative, "unreadable_file", str(exc).splitlines()[0])
            continue
        if not isinstance(data, dict):
            result.fail_file(relative, "unreadable_file", f"a JSON {type(data).__name__}, not an object")
            continue
        method, calibrated, normalised = OUTPUT_TYPES[file.output_type]
        key = RunKey(file.dataset, file.model, method, TASKS[file.task], calibrated)
        result.run_metadata[key] = {"release_output_type": file.output_type, "release_task": file.task,
                                    "calibrated_by": "source" if calibrated else None,
                                    **({"calibration": IN_SAMPLE} if calibrated else {})}
        result.files["imported"] += 1
        for release_key, entry in data.items():
            cells += _import_cell(result, key, file, view, options, str(release_key), entry, relative, normalised)
    result.release_cells = pd.DataFrame(cells)
    return result


def _import_cell(result: ImportResult, key: RunKey, file: _File, view, options: ReleaseOptions,
                 release_key: str, entry: object, relative: str, normalised: bool) -> list[dict]:
    """Add the prediction row of one entry; return its release cells (the paper's own view)."""
    attribute, group = (OVERALL, OVERALL) if file.task == "task0" else (file.attribute, file.group)
    labels, countries, why = None, [], ""
    if file.release_dataset == "opinionqa":
        qkey = release_key
        labels, why = options.opinionqa(file.size, release_key, file.attribute, file.group)
    elif file.release_dataset == "nytimes":
        qkey = book_qkey(release_key)
        labels, why = options.nytimes(release_key)
        if labels is None and qkey in view.options:
            labels, why = view.options[qkey], ""  # NYT prompts list the book's options in order
    else:
        qkey = question_qkey(release_key)
        labels, countries, why = options.global_values(release_key)
        if file.task != "task0":
            index = int(file.group) if file.group.isdigit() else -1
            attribute = COUNTRY
            group = countries[index] if 0 <= index < len(countries) else f"#{file.group}"
    if not isinstance(entry, dict):
        result.add(key, qkey, attribute, group, relative, error=failure("malformed_entry", "not an object"))
        return []
    try:
        letters = _letters(literal(entry.get("avg_actual_results"), numbers=True))
    except (ValueError, SyntaxError):
        letters = None
    raw = entry.get("response")
    raw_reply = None if raw is None else str(raw)
    error = None
    if qkey not in view.options:
        error = failure("question_not_in_dataset", f"{release_key[:60]!r} not in {view.name}")
    elif not view.has_group(qkey, attribute, group):
        error = failure("group_not_in_dataset", f"{attribute}/{group} not in {view.name}")
    elif letters is None:
        error = failure("malformed_entry", "avg_actual_results is not a mapping of option letters")
    elif labels is None:
        error = failure("option_order_unknown", why)
    elif len(letters) != len(labels) or string.ascii_uppercase.index(letters[-1][0]) >= len(labels):
        error = failure("letters_do_not_match_options", f"{len(letters)} letters for {len(labels)} options {labels}")
    probs, outside = None, math.nan
    if error is None:
        by_label = [(labels[string.ascii_uppercase.index(letter)], v) for letter, v in letters]  # A = first option
        probs, outside, error = map_to_options(by_label, view, qkey, sums_to_one=normalised)
    result.add(key, qkey, attribute, group, relative, probs=probs, out_of_option_mass=outside,
               raw_reply=raw_reply, error=error)
    rows = []
    for (t_attribute, t_group), expected in _expected_by_group(entry, file).items():
        try:
            truth = literal(expected, numbers=True)
        except (ValueError, SyntaxError):
            truth = None
        target = (COUNTRY, group) if file.release_dataset == "globalvalues" else (t_attribute, t_group)
        truth_labels = labels
        if file.release_dataset == "opinionqa" and file.task == "task0":  # each group's truth is over its own labels
            truth_labels, _ = options.opinionqa(file.size, release_key, t_attribute, t_group)
        rows.append({
            "release_dataset": file.release_dataset, "dataset": key.dataset, "output_type": file.output_type,
            "model": file.model, "task": file.task, "attribute_dir": t_attribute, "group_file": t_group,
            "release_key": release_key, "qkey": qkey, "attribute": target[0], "group": target[1],
            "avg": [v for _, v in letters] if letters else None,
            "expected": [math.nan if v is None else float(v) for v in truth.values()] if isinstance(truth, dict) else None,
            "labels": labels, "expected_labels": truth_labels, "pred": probs, "error": error, "source_file": relative,
        })
    return rows
