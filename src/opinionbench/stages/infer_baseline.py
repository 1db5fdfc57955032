"""`infer-baseline` stage (DVC `infer-baseline@<name>`): one weightless baseline's predictions.

    opinionbench infer-baseline uniform
"""

from __future__ import annotations

import argparse

from opinionbench.config import InferParams, load
from opinionbench.inference import baselines_registry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=baselines_registry.names(), help="the baseline (one of infer.baselines)")


def run(args: argparse.Namespace) -> int:
    from opinionbench.inference.baselines import BASELINE_METHOD, BASELINE_STEERING, baseline_predictions
    from opinionbench.inference.cells import cells_to_predict, select_questions
    from opinionbench.inference.predictions import prediction_path, write_predictions

    infer = load(InferParams, args.params)
    sample = infer.questions
    questions, distributions, qkeys = select_questions(infer.dataset_dir, sample.n, sample.seed, sample.waves,
                                                       every_question=infer.baselines_on_all)
    cells = cells_to_predict(distributions, qkeys, infer.groups)
    frame = baseline_predictions(args.name, questions, distributions, cells, infer.dataset, k=infer.k_similar,
                                 neighbours=infer.neighbours_path())
    path = prediction_path(infer.dataset, args.name, BASELINE_METHOD, BASELINE_STEERING, infer.out_dir)
    write_predictions(frame, path)
    print(f"{args.name}: {len(frame)} cells ({int(frame['failed'].sum())} failed) -> {path}")
    return 0
