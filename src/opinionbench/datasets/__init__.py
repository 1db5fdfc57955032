"""Importers of other benchmarks into the two tables (questions, distributions) of the build.

Each importer reads one dataset of the distributional-alignment release (a directory given in
params.yaml, `datasets.distributional_alignment`) and returns an `ImportedDataset`; the
`import` stage writes it to `data/datasets/<name>/` where `opinionbench.tables.read_dataset`
reads it like the main build. The original OpinionQA (15 waves) is not imported: it is a build
of those waves (`data.waves`, see README).
"""

from __future__ import annotations

from opinionbench.datasets.common import ImportedDataset, DatasetImportError
from opinionbench.datasets.registry import IMPORTERS, import_dataset

__all__ = ["IMPORTERS", "DatasetImportError", "ImportedDataset", "import_dataset"]
