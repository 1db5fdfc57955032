"""Build the questions and distributions tables from many waves, in parallel, wave-isolated.

One bad wave never stops the others: its problem is reported as one line and the build goes
on. The report says, per wave, what was built or why not, and what columns were skipped.
"""

from __future__ import annotations

import collections
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from opinionbench.errors import one_line
from opinionbench.survey.answer_classes import AnswerConvention, label_report
from opinionbench.survey.wave import distributions, load_wave
from opinionbench.tables import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS


@dataclass
class WaveResult:
    path: Path
    questions: pd.DataFrame | None = None
    distributions: pd.DataFrame | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class BuildResult:
    questions: pd.DataFrame
    distributions: pd.DataFrame
    waves: list[WaveResult]

    @property
    def failed(self) -> list[WaveResult]:
        return [w for w in self.waves if w.error]

    def report(self) -> dict:
        skipped_reasons = collections.Counter(
            reason.split(" (")[0] for w in self.waves for reason in w.skipped.values()
        )
        return {
            "waves_built": sum(1 for w in self.waves if not w.error),
            "waves_failed": {w.path.name: w.error for w in self.failed},
            "questions": int(len(self.questions)),
            "cells": int(len(self.distributions)),
            "skipped_columns_by_reason": dict(skipped_reasons.most_common()),
            **label_report(self.questions["options"].tolist(), self.questions["refusal_options"].tolist()),
            "skipped_columns": {w.path.stem: w.skipped for w in self.waves if w.skipped},
        }


def build_one(path: Path, answer_classes: AnswerConvention = "pew") -> WaveResult:
    """Worker: everything for one wave; any problem becomes a one-line error, never a crash."""
    try:
        wave = load_wave(path, answer_classes=answer_classes)
        return WaveResult(path, wave.questions, distributions(wave), dict(wave.skipped))
    except Exception as exc:  # isolate the wave: report it and let the others build
        return WaveResult(path, error=one_line(exc))


def _one_blas_thread() -> None:
    """Worker initialiser: one BLAS thread per process, so N workers do not oversubscribe N cores."""
    threadpool_limits(1)


def build_waves(paths: list[Path], workers: int = 2, details: dict[str, dict] | None = None,
                answer_classes: AnswerConvention = "pew") -> BuildResult:
    results: list[WaveResult] = []
    one = partial(build_one, answer_classes=answer_classes)
    if workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_one_blas_thread) as pool:
            for res in tqdm(pool.map(one, paths), total=len(paths), desc="build waves", unit="wave"):
                results.append(res)
    else:
        for path in tqdm(paths, desc="build waves", unit="wave"):
            results.append(one(path))
    ok = [r for r in results if not r.error]
    questions = pd.concat([r.questions for r in ok], ignore_index=True) if ok else pd.DataFrame(columns=QUESTION_COLUMNS)
    dists = pd.concat([r.distributions for r in ok], ignore_index=True) if ok else pd.DataFrame(columns=DISTRIBUTION_COLUMNS)
    for wave_id, meta in (details or {}).items():
        mask = questions["wave"] == wave_id
        for col in ("wave_start", "wave_end", "topic"):
            if meta.get(col):
                questions.loc[mask & questions[col].isna(), col] = meta[col]
    return BuildResult(questions, dists, results)
