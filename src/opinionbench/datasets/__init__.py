"""Importers of other benchmarks into the two tables (questions, distributions) of the build.

Each importer reads one dataset of the distributional-alignment release (a directory given in
params.yaml, `datasets.distributional_alignment`) and returns an `ImportedDataset`; the
`import-datasets` stage writes it to `data/datasets/<name>/` where
`opinionbench.tables.read_dataset` reads it like the main build. The original OpinionQA (15
waves) is not imported: it is a build of those waves (`data.waves`, see README).

Adding a benchmark is one module with a function `root -> ImportedDataset` decorated with
`@importers.register("<name>")`, plus one line naming that module below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from opinionbench.datasets.common import DatasetImportError, ImportedDataset
from opinionbench.registry import Registry

importers: Registry[Callable[[Path], ImportedDataset]] = Registry("dataset importer", builtins={
    "opinionqa_100": "opinionbench.datasets.opinionqa",
    "opinionqa_500": "opinionbench.datasets.opinionqa",
    "nytimes": "opinionbench.datasets.nytimes",
    "global_values": "opinionbench.datasets.global_values",
})


def import_dataset(name: str, root: Path) -> ImportedDataset:
    return importers.get(name)(Path(root))


__all__ = ["DatasetImportError", "ImportedDataset", "import_dataset", "importers"]
