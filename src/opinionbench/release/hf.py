"""The release directory in the Hugging Face `datasets` layout, written whole or not at all.

    <out_dir>/README.md                                   dataset card (YAML header: configs, features, sizes)
    <out_dir>/croissant.json                              Croissant metadata (validated with mlcroissant)
    <out_dir>/questions/test-00000-of-00001.parquet       one row per question
    <out_dir>/distributions/test-00000-of-00001.parquet   one row per (question, attribute, group)

`datasets.load_dataset(<out_dir>, "questions")` reads it offline (the card's `configs:` name the
files). The one split is `test`: OpinionQA-XL is an evaluation benchmark. The directory is built
beside its final place and renamed over it, so a killed run never leaves a half release.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from opinionbench.io import file_sha256
from opinionbench.release.schema import CONFIGS, to_arrow

SPLIT = "test"
ROW_GROUP_ROWS = 100_000  # row groups the dataset viewer and readers can page through


@dataclass(frozen=True)
class ConfigFile:
    """One configuration's parquet file, as the card and the Croissant metadata describe it."""

    config: str
    path: str  # relative to the release directory, POSIX
    rows: int
    num_bytes: int  # Arrow in-memory size (the card's dataset_size)
    size: int  # bytes on disk (download_size)
    sha256: str
    schema: pa.Schema


def config_path(config: str) -> str:
    return f"{config}/{SPLIT}-00000-of-00001.parquet"


def write_parquet_configs(frames: dict[str, pd.DataFrame], out_dir: Path) -> list[ConfigFile]:
    """Each frame as its configuration's parquet (columns and types from release/schema.py)."""
    files = []
    for config in CONFIGS:
        table = to_arrow(frames[config], config)
        rel = config_path(config)
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        files.append(ConfigFile(config=config, path=rel, rows=table.num_rows, num_bytes=table.nbytes,
                                size=path.stat().st_size, sha256=file_sha256(path), schema=table.schema))
    return files


def staging_dir(out_dir: Path) -> Path:
    """An empty directory beside `out_dir` (same filesystem) to build the release in."""
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish(staging: Path, out_dir: Path) -> None:
    """Put the finished `staging` directory in place of `out_dir` (the old one removed)."""
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
