"""One release from the validated tables: the Hugging Face directory (parquet, card, Croissant)
and the OpinionQA-layout export, each built beside its place and swapped in whole."""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opinionbench.release import card, croissant
from opinionbench.release.hf import publish, staging_dir, write_parquet_configs
from opinionbench.release.human_resp import export_human_resp


@dataclass(frozen=True)
class ReleaseResult:
    out_dir: Path
    human_resp_dir: Path | None
    questions: int
    cells: int
    surveys: int
    bytes: int
    seconds: float


def _size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def release(questions: pd.DataFrame, distributions: pd.DataFrame, out_dir: Path, *, name: str, version: str,
            date_published: datetime.date, validation: dict | None = None, human_resp_dir: Path | None = None,
            attributes: list[str] | None = None) -> ReleaseResult:
    """Write the release of (questions, distributions); `validation` is validate's summary (for the card)."""
    start = time.perf_counter()
    out_dir, staging = Path(out_dir), staging_dir(Path(out_dir))
    try:
        files = write_parquet_configs({"questions": questions, "distributions": distributions}, staging)
        facts = card.facts(name, version, date_published, files, questions, distributions, validation or {})
        (staging / "README.md").write_text(card.render(facts))
        croissant.write(facts, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out_dir)
    size, surveys = _size(out_dir), 0
    if human_resp_dir is not None:
        export_staging = staging_dir(Path(human_resp_dir))
        surveys = len(export_human_resp(questions, distributions, export_staging, attributes))
        publish(export_staging, Path(human_resp_dir))
        size += _size(Path(human_resp_dir))
    return ReleaseResult(out_dir=out_dir, human_resp_dir=human_resp_dir, questions=len(questions),
                         cells=len(distributions), surveys=surveys, bytes=size, seconds=time.perf_counter() - start)
