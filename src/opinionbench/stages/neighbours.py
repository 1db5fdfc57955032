"""`neighbours` stage: the top-k similar questions of the dataset, once, as a sparse-built table.

Few-shot steering and the similar-questions baseline read this table instead of each building
a similarity matrix: on the real build (12.5k questions) the dense n x n matrix alone was 1.2 GB
and its TF-IDF input 13 GB, once per inference stage.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from opinionbench.config import InferParams, load
    from opinionbench.io import write_parquet
    from opinionbench.neighbours import build_neighbours
    from opinionbench.tables import read_table

    infer = load(InferParams, args.params)
    questions = read_table(infer.dataset_dir / "questions.parquet", ["qkey", "question", "options"])
    table = build_neighbours(questions, k=infer.neighbours_k, progress=None if not args.no_progress else False)
    path = infer.neighbours_path()
    write_parquet(table, path)
    print(f"neighbours: {len(questions)} questions x top-{infer.neighbours_k} -> {path} ({len(table)} rows)")
    return 0
