"""`import-datasets` stage: other benchmarks → data/datasets/<name>/{questions,distributions}.parquet.

With `datasets.distributional_alignment: null` (the default) nothing is imported and only the
report is written, so the default pipeline never needs external data. Each dataset is imported
on its own: a broken one is reported on one line and the others are still written.
"""

from __future__ import annotations

import argparse
import shutil

from tqdm import tqdm

from opinionbench.config import DatasetsParams, load
from opinionbench.errors import ConfigError, OpinionBenchError, one_line
from opinionbench.io import write_json, write_parquet


def run(args: argparse.Namespace) -> int:
    params = load(DatasetsParams, args.params)
    out = params.out_dir
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"source": None if params.distributional_alignment is None else str(params.distributional_alignment),
                    "imported": {}, "failed": {}}
    root = params.distributional_alignment
    if root is None:
        write_json(report, out / "import_report.json")
        print("datasets.distributional_alignment is null: nothing to import")
        return 0
    if not root.is_dir():
        raise ConfigError(f"params.yaml: datasets.distributional_alignment: {root} is not a directory")
    from opinionbench.datasets import import_dataset

    for name in tqdm(params.include, desc="import", unit="dataset"):
        try:
            dataset = import_dataset(name, root)
        except OpinionBenchError as exc:
            report["failed"][name] = one_line(exc)
            print(f"dataset not imported: {name}: {one_line(exc)}")
            continue
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        write_parquet(dataset.questions, target / "questions.parquet")
        write_parquet(dataset.distributions, target / "distributions.parquet")
        if dataset.human_annotations is not None:
            write_parquet(dataset.human_annotations, target / "human_annotations.parquet")
        report["imported"][name] = {
            "questions": len(dataset.questions), "cells": len(dataset.distributions),
            "attributes": sorted(set(dataset.distributions["attribute"])),
            "human_annotations": 0 if dataset.human_annotations is None else len(dataset.human_annotations),
            "source": dataset.source,
        }
        print(f"imported {name}: {len(dataset.questions)} questions, {len(dataset.distributions)} cells -> {target}")
    write_json(report, out / "import_report.json")
    return 0 if report["imported"] or not params.include else 2
