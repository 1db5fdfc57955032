"""`infer` stage (DVC `infer@<model>-<method>`): one model × one method over every configured steering.

    opinionbench infer --model smollm2 --method logprobs
"""

from __future__ import annotations

import argparse

from opinionbench.config import InferParams, ModelsParams, load
from opinionbench.elicit import methods


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a name under `models:` in params.yaml")
    parser.add_argument("--method", required=True, choices=methods.names())
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from opinionbench.inference.cells import select_questions
    from opinionbench.inference.plan import run_steerings
    from opinionbench.inference.runner import RunSummary
    from opinionbench.models import load_backend
    from opinionbench.models.base import ModelError

    infer = load(InferParams, args.params)
    sample = infer.questions
    questions, distributions, qkeys = select_questions(infer.dataset_dir, sample.n, sample.seed, sample.waves)
    entry = load(ModelsParams, args.params).entry(args.model)
    backend = load_backend(entry)
    summaries = []
    try:
        for steering, s in run_steerings(backend, args.model, args.method, infer.run_plan(), questions, distributions,
                                         qkeys, progress=not args.no_progress,
                                         model_settings=entry.model_dump(mode="json")):
            summaries.append(s)
            retried = f" ({s.retried} tried again)" if s.retried else ""
            print(f"{args.model} {args.method}/{steering}: {s.cells} cells, {s.computed} computed{retried}, "
                  f"{s.reused} reused, {s.failed} failed -> {s.path}")
            if s.failed:
                print(f"  {s.failure_line()}")
            if s.exhausted:
                print(f"  {s.exhausted} failed requests not tried again: tried infer.max_attempts "
                      f"({infer.max_attempts}) times already (raise it to try them again)")
    finally:
        backend.close()
    total = RunSummary.total(summaries)
    if total.cells and total.failed == total.cells:  # the project's one-line error (cli), exit status 2
        raise ModelError(f"{args.model} {args.method}: {total.failure_line()}")
    return 0

