"""What every prediction importer shares: the imported datasets, option mapping, failures, output.

An importer turns each published prediction into one row of our predictions schema
(`opinionbench.tables.PREDICTION_COLUMNS`) plus provenance (`PROVENANCE_COLUMNS`). A row that
cannot be matched to the dataset is kept as a *failed* row whose `error` starts with one of the
`REASONS` codes, so the import report counts every failure by a known reason and nothing is
dropped silently.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.errors import OpinionBenchError
from opinionbench.inference.predictions import RUN_METADATA, normalise_predictions, prediction_path
from opinionbench.io import write_json, write_parquet
from opinionbench.tables import OVERALL, read_dataset

SOURCE = "published"
PROVENANCE_COLUMNS = ["source_file", "source", "importer"]
KEY = ["qkey", "attribute", "group"]

# Why a published prediction became a failed row (the `error` column starts with the code).
REASONS = {
    "question_not_in_dataset": "the question key is not a question of the imported dataset",
    "group_not_in_dataset": "the imported dataset has no human distribution for this group",
    "option_order_unknown": "the release gives no option list for this cell, so its letters cannot be read",
    "letters_do_not_match_options": "the number of letters differs from the options the prompt listed",
    "option_not_in_dataset": "an option label is neither an option nor a refusal option of the dataset",
    "unparsable_reply": "the release's own reply was not parsed (every letter 0): the release failed this cell",
    "no_mass_on_options": "all probability is on refusal-type options, none on the dataset's options",
    "nan_probabilities": "the release stores NaN probabilities for this cell",
    "malformed_entry": "the entry lacks its probabilities or is not in the importer's format",
}
# Why a whole file was not imported.
FILE_REASONS = {
    "unknown_dataset": "a dataset folder the importer does not map to an imported dataset",
    "dataset_not_imported": "the dataset is not under datasets.out_dir (run import-datasets with it)",
    "unknown_output_type": "an output type (method) the importer does not know",
    "unknown_task": "a task (steering) the importer does not know",
    "unreadable_file": "not valid JSON / not the expected shape",
    "not_model_output": "a file of the release that holds no model predictions (tables, human annotations)",
}


class PredictionImportError(OpinionBenchError):
    """A source of published predictions is missing or not in its importer's format."""


@dataclass
class DatasetView:
    """What matching needs from one imported dataset: options, refusal options, the truth per cell."""

    name: str
    options: dict[str, list[str]]
    refusals: dict[str, list[str]]
    truth: dict[tuple[str, str, str], np.ndarray]

    @classmethod
    def from_tables(cls, name: str, questions: pd.DataFrame, distributions: pd.DataFrame) -> DatasetView:
        refusal = questions["refusal_options"] if "refusal_options" in questions else [[]] * len(questions)
        return cls(
            name=name,
            options={q: [str(o) for o in opts] for q, opts in zip(questions["qkey"], questions["options"])},
            refusals={q: [str(o) for o in (r if r is not None else [])] for q, r in zip(questions["qkey"], refusal)},
            truth={(q, a, g): np.asarray(p, dtype=float) for q, a, g, p in zip(
                distributions["qkey"].tolist(), distributions["attribute"].tolist(),
                distributions["group"].tolist(), distributions["probs"].tolist())},
        )

    def has_group(self, qkey: str, attribute: str, group: str) -> bool:
        return (qkey, attribute, group) in self.truth or (attribute, group) == (OVERALL, OVERALL)


class DatasetCatalog:
    """The imported datasets under `datasets.out_dir`, read once each, by name."""

    def __init__(self, root: Path, extra: Mapping[str, DatasetView] | None = None) -> None:
        self.root = Path(root)
        self._views: dict[str, DatasetView | None] = dict(extra or {})

    def get(self, name: str) -> DatasetView | None:
        if name not in self._views:
            directory = self.root / name
            if (directory / "questions.parquet").exists():
                questions, distributions = read_dataset(directory)
                self._views[name] = DatasetView.from_tables(name, questions, distributions)
            else:
                self._views[name] = None
        return self._views[name]


@dataclass(frozen=True)
class RunKey:
    """One predictions file: (dataset, model, method, steering), and whether the source calibrated it."""

    dataset: str
    model: str
    method: str
    steering: str
    calibrated: bool = False


def failure(reason: str, detail: str) -> str:
    assert reason in REASONS, reason
    return f"{reason}: {detail}"


def map_to_options(mass_by_label: Sequence[tuple[str, float]], view: DatasetView, qkey: str,
                   sums_to_one: bool) -> tuple[list[float], float, str | None]:
    """(probs over the dataset's options, out-of-option mass, error or None).

    Mass on a refusal option of the dataset is out of its options (the dataset keeps refusals
    apart); `sums_to_one=False` (log-probs) also counts the mass outside every listed label.
    """
    options, refusals = view.options[qkey], set(view.refusals.get(qkey, []))
    index = {o: i for i, o in enumerate(options)}
    values = np.zeros(len(options))
    refused = 0.0
    for label, value in mass_by_label:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return [], math.nan, failure("nan_probabilities", f"option {label!r}")
        if label in index:
            values[index[label]] += float(value)
        elif label in refusals:
            refused += float(value)
        else:
            return [], math.nan, failure("option_not_in_dataset", f"{label!r} not among {options}")
    total = float(values.sum())
    if total <= 0:
        if refused > 0:
            return [], math.nan, failure("no_mass_on_options", f"{refused:.3f} on refusal options only")
        return [], math.nan, failure("unparsable_reply", "every option has probability 0")
    outside = (1.0 - total) if not sums_to_one else refused / (total + refused)
    return list(values / total), max(0.0, outside), None


@dataclass
class ImportResult:
    """What one importer produced from one source: rows by run, and what it could not import."""

    importer: str
    source: Path
    rows: dict[RunKey, list[dict]] = field(default_factory=dict)
    files: Counter = field(default_factory=Counter)  # found, imported
    file_failures: list[dict] = field(default_factory=list)  # {file, reason, detail}
    run_metadata: dict[RunKey, dict] = field(default_factory=dict)
    release_cells: pd.DataFrame | None = None  # importer-specific raw view (the paper's own truth)

    def add(self, key: RunKey, qkey: str, attribute: str, group: str, source_file: str, *, probs=None,
            out_of_option_mass: float = math.nan, raw_reply: str | None = None, error: str | None = None,
            model_id: str | None = None) -> None:
        self.rows.setdefault(key, []).append({
            "qkey": qkey, "attribute": attribute, "group": group, "probs": list(probs or []) if error is None else [],
            "out_of_option_mass": out_of_option_mass if error is None else math.nan, "raw_reply": raw_reply,
            "failed": error is not None, "error": error, "template_hash": None, "model_id": model_id or key.model,
            "model_revision": None, "method": key.method, "steering": key.steering, "dataset": key.dataset,
            "source_file": source_file, "source": SOURCE, "importer": self.importer,
        })

    def fail_file(self, path: str, reason: str, detail: str) -> None:
        assert reason in FILE_REASONS, reason
        self.file_failures.append({"file": path, "reason": reason, "detail": detail})

    def frames(self) -> dict[RunKey, pd.DataFrame]:
        """Each run's rows in the predictions schema (deterministic order) plus provenance columns."""
        out = {}
        for key, rows in sorted(self.rows.items(), key=lambda kv: tuple(map(str, vars(kv[0]).values()))):
            frame = pd.DataFrame(rows)
            dupes = frame.duplicated(KEY, keep="first").to_numpy()
            if dupes.any():  # the same cell twice in one run: the first counts, the others fail visibly
                frame["failed"] = frame["failed"] | dupes
                frame["error"] = [failure("malformed_entry", "the same cell appears twice in this run") if d else e
                                  for d, e in zip(dupes, frame["error"])]
                frame["probs"] = [[] if d else p for d, p in zip(dupes, frame["probs"])]
            ordered = frame.sort_values(KEY, kind="stable")  # normalise_predictions' own order
            table = normalise_predictions(frame)
            for column in PROVENANCE_COLUMNS:
                table[column] = ordered[column].to_numpy()
            out[key] = table
        return out

    def report(self) -> dict:
        reasons: Counter = Counter()
        cells = failed = 0
        runs = []
        for key, frame in self.frames().items():
            codes = frame.loc[frame["failed"], "error"].map(lambda e: str(e).split(":", 1)[0])
            reasons.update(codes.tolist())
            cells += len(frame)
            failed += int(frame["failed"].sum())
            runs.append({**vars(key), "cells": len(frame), "failed": int(frame["failed"].sum()),
                         "failures": dict(Counter(codes.tolist()))})
        file_reasons = Counter(f["reason"] for f in self.file_failures)
        unexplained = sum(v for k, v in reasons.items() if k not in REASONS) + sum(
            v for k, v in file_reasons.items() if k not in FILE_REASONS)
        return {
            "importer": self.importer, "source": str(self.source),
            "files": {"found": self.files["found"], "imported": self.files["imported"],
                      "not_imported": dict(file_reasons)},
            "cells": {"total": cells, "imported": cells - failed, "failed": failed, "failed_by_reason": dict(reasons)},
            "unexplained_failures": unexplained,
            "reasons": {k: REASONS[k] for k in sorted(reasons) if k in REASONS},
            "file_reasons": {k: FILE_REASONS[k] for k in sorted(file_reasons)},
            "file_failures": self.file_failures,
            "runs": runs,
        }


def run_path(root: Path, key: RunKey) -> Path:
    """`<root>/predictions/...` for runs as published, `<root>/calibrated/...` for runs the source
    temperature-scaled itself (read by evaluate like our `calibrate` output, marked in-sample)."""
    return prediction_path(key.dataset, key.model, key.method, key.steering,
                           Path(root) / ("calibrated" if key.calibrated else "predictions"))


def write_result(result: ImportResult, root: Path) -> dict[RunKey, Path]:
    """Write every run of `result` (predictions schema + provenance, metadata in the file)."""
    written = {}
    for key, frame in result.frames().items():
        path = run_path(root, key)
        files = sorted(set(frame["source_file"].dropna()))
        frame.attrs[RUN_METADATA] = {
            "source": SOURCE, "importer": result.importer, "source_root": str(result.source), "source_files": files,
            **result.run_metadata.get(key, {}),
            "cells": len(frame), "failed": int(frame["failed"].sum()),
        }
        write_parquet(frame, path)
        written[key] = path
    return written


def write_report(reports: list[dict], path: Path) -> dict:
    total = {"sources": reports,
             "files": sum(r["files"]["found"] for r in reports),
             "cells": sum(r["cells"]["total"] for r in reports),
             "failed": sum(r["cells"]["failed"] for r in reports),
             "unexplained_failures": sum(r["unexplained_failures"] for r in reports)}
    write_json(total, path)
    return total
