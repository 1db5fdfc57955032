"""Dataset name → importer: adding a benchmark is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from opinionbench.datasets.common import ImportedDataset
from opinionbench.datasets.global_values import import_global_values
from opinionbench.datasets.nytimes import import_nytimes
from opinionbench.datasets.opinionqa import import_opinionqa_subset

IMPORTERS: dict[str, Callable[[Path], ImportedDataset]] = {
    "opinionqa_100": partial(import_opinionqa_subset, size=100),
    "opinionqa_500": partial(import_opinionqa_subset, size=500),
    "nytimes": import_nytimes,
    "global_values": import_global_values,
}


def import_dataset(name: str, root: Path) -> ImportedDataset:
    return IMPORTERS[name](Path(root))
