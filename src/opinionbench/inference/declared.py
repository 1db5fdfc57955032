"""Which predictions tables params declare, and which files on disk nothing declares (stale).

Why: the predictions directory outlives the params that filled it. An experiment that named a
model, method or steering leaves its tables behind when params change back (`git checkout
params.yaml` after a failed `dvc exp run`), and a stage that globbed the directory would
validate and score a model no longer configured. `validate-predictions` and `evaluate` take the
declared tables only (`split_predictions`) and say which files they left out, and why.

Declared: every `infer.run` model × `infer.methods` × `infer.steerings`, and every
`infer.baselines` entry, for `infer.dataset` (the DVC matrix builds exactly these), plus any
`extra` (dataset, model, method, steering) a caller adds (e.g. imported published runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from opinionbench.inference.predictions import BASELINE_METHOD, BASELINE_STEERING

Table = tuple[str, str, str, str]  # (dataset, model, method, steering): <root>/<dataset>/<model>/<method>/<steering>.parquet
DECLARED_BY = "infer.run × infer.methods × infer.steerings, infer.baselines"
F = TypeVar("F", bound=Any)


def declared_tables(dataset: str, runs: Iterable[str], methods: Iterable[str], steerings: Iterable[str],
                    baselines: Iterable[str], extra: Iterable[Table] = ()) -> set[Table]:
    """The (dataset, model, method, steering) of every table the params declare."""
    steerings = list(steerings)
    tables = {(dataset, model, method, steering) for model in runs for method in methods for steering in steerings}
    tables |= {(dataset, name, BASELINE_METHOD, BASELINE_STEERING) for name in baselines}
    return tables | set(extra)


def table_of(path: Path, root: Path) -> Table | None:
    """The (dataset, model, method, steering) of a predictions file under `root`; None off the layout."""
    try:
        parts = Path(path).relative_to(root).with_suffix("").parts
    except ValueError:
        return None
    return (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 and Path(path).suffix == ".parquet" else None


@dataclass(frozen=True)
class PredictionFiles:
    """What a stage reads of a predictions directory: the declared files found, the declared
    ones not found, and the files found that nothing declares (left out)."""

    root: Path
    declared: list[Path]
    missing: list[Path]
    stale: list[Path]

    def notes(self) -> list[str]:
        """One line per kind of file left out, naming the first few (empty when none)."""
        lines = []
        if self.stale:
            lines.append(f"{len(self.stale)} predictions file(s) not declared by params ({DECLARED_BY}), left out "
                         f"as stale: {_names(self.stale)}")
        if self.missing:
            lines.append(f"{len(self.missing)} declared predictions file(s) not found (run their infer stages): "
                         f"{_names(self.missing)}")
        return lines


def split_predictions(root: Path, tables: set[Table]) -> PredictionFiles:
    """The files of `root` (`<dataset>/<model>/<method>/<steering>.parquet`) sorted into declared
    (found), missing (declared, not found) and stale (found, not declared)."""
    root = Path(root)
    found = {table_of(p, root): p for p in sorted(root.glob("*/*/*/*.parquet"))} if root.is_dir() else {}
    declared = sorted(p for t, p in found.items() if t in tables)
    stale = sorted(p for t, p in found.items() if t not in tables)
    missing = sorted(root.joinpath(*t[:3], f"{t[3]}.parquet") for t in tables if t not in found)
    return PredictionFiles(root, declared, missing, stale)


def only_declared(files: Sequence[F], root: Path, tables: set[Table]) -> tuple[list[F], PredictionFiles]:
    """The items of `files` (anything with a `.path` under `root`, e.g. evaluate's discovered
    files) that params declare, and the split of `root` (its `notes()` say what was left out)."""
    split = split_predictions(root, tables)
    declared = set(split.declared)
    return [f for f in files if Path(f.path) in declared], split


def keep_declared(files: Sequence[F], root: Path, tables: set[Table]) -> tuple[list[F], str | None]:
    """`only_declared`, for a stage that reads what it scores from `root`: the declared items, and
    the line saying which files were left out as stale (None when none). A declared file not yet
    made is the infer stages' concern, not the reader's."""
    kept, split = only_declared(files, root, tables)
    return kept, (f"{root}: {split.notes()[0]}" if split.stale else None)


def _names(paths: list[Path], shown: int = 3) -> str:
    more = f" (+{len(paths) - shown} more)" if len(paths) > shown else ""
    return ", ".join(str(p) for p in paths[:shown]) + more
