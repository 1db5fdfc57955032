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
    from opinionbench.models import load_backend

    infer = load(InferParams, args.params)
    questions, distributions, qkeys = select_questions(infer)
    entry = load(ModelsParams, args.params).entry(args.model)
    backend = load_backend(entry)
    all_failed = True
    try:
        for steering, s in run_steerings(backend, args.model, args.method, infer, questions, distributions, qkeys,
                                         progress=not args.no_progress,
                                         model_settings=entry.model_dump(mode="json")):
            all_failed &= s.cells > 0 and s.failed == s.cells
            print(f"{args.model} {args.method}/{steering}: {s.cells} cells, {s.computed} computed, "
                  f"{s.reused} reused, {s.failed} failed -> {s.path}")
    finally:
        backend.close()
    if all_failed:
        print(f"error: {args.model} {args.method}: every cell failed (see the `error` column)")
        return 2
    return 0
