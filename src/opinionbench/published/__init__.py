"""Predictions made elsewhere (published runs), imported into our predictions schema.

A *prediction importer* reads one source (a release directory, a file) and returns an
`ImportResult` (published/common.py): rows in the predictions schema for each (dataset, model,
method, steering), every row with its source file, and a failed row naming why wherever a
question, group or option does not match the imported dataset — never a silent drop. The
`import-predictions` stage writes them where `evaluate` can score them with our own code, and
reproduces the distributional-alignment paper's tables (published/paper.py).

Adding an importer is one module with a function `(source, datasets) -> ImportResult`
decorated with `@importers.register("<name>")`, plus one line naming that module below.

The `published` params section is modelled here, by the package that reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from opinionbench.io import DataPath
from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.published.common import DatasetCatalog, ImportResult

importers: Registry[Callable[[Path, DatasetCatalog], ImportResult]] = Registry("prediction importer", builtins={
    "distributional-alignment": "opinionbench.published.distributional_alignment",
    "long": "opinionbench.published.long_format",
})


def import_predictions(name: str, source: Path, datasets: DatasetCatalog) -> ImportResult:
    """Run the importer registered as `name` on `source` (datasets: a `DatasetCatalog`)."""
    return importers.get(name)(Path(source), datasets)


class PublishedSource(BaseModel):
    """One source of published predictions: which importer reads it, and where it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    importer: Annotated[str, AfterValidator(importers.check)]
    path: Path


class PublishedParams(BaseModel):
    """Stage `import-predictions`: published runs → our predictions schema, and the paper's tables.

    Off by default (`distributional_alignment: null`, no `sources`): the default pipeline imports
    nothing and needs no external data.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    distributional_alignment: Path | None = Field(
        None, description="the distributional-alignment release (e.g. ../shared/data/distributional_alignment): "
        "its results/ are imported and its published tables reproduced")
    sources: list[PublishedSource] = Field(
        default_factory=list, description="further sources, e.g. {importer: long, path: runs.csv}")
    out_dir: DataPath = Field(Path("data/published"), description="predictions/, calibrated/, import_report.json")
    paper_dir: DataPath = Field(Path("data/reports/paper"), description="the paper's tables, reproduced")
    bootstrap: int = Field(1000, ge=10, le=100_000, description="bootstrap resamples of each dataset's cells")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0

    def all_sources(self) -> list[PublishedSource]:
        """`distributional_alignment` (the shorthand) first, then `sources`."""
        first = ([PublishedSource(importer="distributional-alignment", path=self.distributional_alignment)]
                 if self.distributional_alignment is not None else [])
        return [*first, *self.sources]


__all__ = ["PublishedParams", "PublishedSource", "import_predictions", "importers"]
