"""Croissant metadata (`croissant.json`) of the release, built and validated with `mlcroissant`.

Croissant (MLCommons) is the JSON-LD description dataset search engines and loaders read: the
files (with their sha256) and, per configuration, a record set whose fields extract the parquet
columns. It is built with mlcroissant's own classes, so the JSON-LD is spelled by the reference
implementation, and reloaded from disk: any error or warning it reports stops the release.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pyarrow as pa

from opinionbench.release.card import PEW_TERMS, PRETTY_NAME, ReleaseFacts
from opinionbench.release.schema import ReleaseError, columns

FILENAME = "croissant.json"


def _data_type(arrow: pa.DataType):
    import mlcroissant as mlc

    base = arrow.value_type if pa.types.is_list(arrow) else arrow
    if pa.types.is_integer(base):
        return mlc.DataType.INTEGER
    if pa.types.is_floating(base):
        return mlc.DataType.FLOAT
    return mlc.DataType.TEXT


def metadata(f: ReleaseFacts):
    """The release's `mlcroissant.Metadata`: one FileObject per parquet, one RecordSet per configuration."""
    import mlcroissant as mlc

    distribution, record_sets = [], []
    for cf in f.files:
        file_id = f"{cf.config}-parquet"
        distribution.append(mlc.FileObject(
            id=file_id, name=file_id, description=f"the `{cf.config}` configuration ({cf.rows} rows)",
            content_url=cf.path, encoding_formats=["application/x-parquet"], sha256=cf.sha256,
            content_size=f"{cf.size} B"))
        fields = []
        for col in columns(cf.config):
            fields.append(mlc.Field(
                id=f"{cf.config}/{col.name}", name=col.name, description=col.description,
                data_types=[_data_type(col.type)],
                **({"is_array": True, "array_shape": "-1"} if pa.types.is_list(col.type) else {}),
                source=mlc.Source(file_object=file_id, extract=mlc.Extract(column=col.name))))
        key = ["qkey"] if cf.config == "questions" else ["qkey", "attribute", "group"]
        record_sets.append(mlc.RecordSet(
            id=cf.config, name=cf.config, description=f"one row per ({', '.join(key)})",
            key=[f"{cf.config}/{k}" for k in key], fields=fields))
    return mlc.Metadata(
        name=f.name, description=(
            f"{PRETTY_NAME}: {f.questions} questions from {len(f.waves)} Pew American Trends Panel waves with "
            f"the weighted answer distribution of the public and of {len(f.attributes)} demographic attributes' "
            "groups, rebuilt from the respondent-level microdata. See README.md (the dataset card)."),
        version=f.version, license=[PEW_TERMS], url="https://www.pewresearch.org/american-trends-panel-datasets/",
        cite_as="Santurkar et al., Whose Opinions Do Language Models Reflect?, ICML 2023; "
                "data: Pew Research Center American Trends Panel",
        keywords=["survey", "public opinion", "Pew Research Center", "American Trends Panel", "OpinionQA",
                  "distributional alignment"],
        in_language=["en"],
        date_published=datetime.datetime.combine(f.date_published, datetime.time()), distribution=distribution, record_sets=record_sets)


def write(f: ReleaseFacts, out_dir: Path) -> Path:
    """Write `croissant.json` into the release directory and validate it there (files included)."""
    meta = metadata(f)
    issues = meta.issues.report() if meta.issues.errors or meta.issues.warnings else ""
    if issues:
        raise ReleaseError(f"croissant.json: mlcroissant reports: {issues.splitlines()[0]} ...\n{issues}")
    path = out_dir / FILENAME
    path.write_text(json.dumps(meta.to_json(), indent=2, ensure_ascii=False, default=str) + "\n")
    validate(path)
    return path


def validate(path: Path) -> None:
    """Reload `croissant.json` with mlcroissant; its errors or warnings raise ReleaseError (one line first)."""
    import mlcroissant as mlc

    try:
        dataset = mlc.Dataset(jsonld=str(path))
    except mlc.ValidationError as exc:
        raise ReleaseError(f"{path}: not valid Croissant: {str(exc).strip().splitlines()[0]}") from None
    warnings = dataset.metadata.issues.warnings
    if warnings:
        raise ReleaseError(f"{path}: Croissant warnings: {'; '.join(sorted(warnings))[:500]}")
