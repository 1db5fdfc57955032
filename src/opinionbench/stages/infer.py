"""`infer` stage: one model × one method over every configured steering, or the weightless baselines.

    opinionbench infer --model smollm2 --method logprobs   # DVC: infer@smollm2-logprobs
    opinionbench infer --baseline uniform                  # DVC: infer-baseline@uniform
    opinionbench infer --baselines                         # every infer.baselines entry
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a name under `models:` in params.yaml")
    parser.add_argument("--method", choices=["logprobs", "verbalized", "sequence"])
    parser.add_argument("--baselines", action="store_true", help="write the infer.baselines predictions instead")
    parser.add_argument("--baseline", choices=["uniform", "overall-prior", "similar-questions"],
                        help="write one baseline's predictions (DVC: infer-baseline@NAME)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from opinionbench.config import InferParams, ModelsParams, load_params
    from opinionbench.errors import ConfigError
    from opinionbench.inference.predictions import prediction_path, write_predictions
    from opinionbench.inference.runner import sample_questions
    from opinionbench.models.baselines import baseline_predictions, cells_to_predict
    from opinionbench.tables import read_dataset

    (infer,) = load_params("infer", path=args.params)
    assert isinstance(infer, InferParams)
    questions, distributions = read_dataset(infer.dataset_dir)
    qkeys = sample_questions(questions, infer.questions.n, infer.questions.seed, infer.questions.waves)
    if not qkeys:
        raise ConfigError(f"params.yaml: infer.questions: no question of {infer.dataset_dir} is selected")
    if args.baselines or args.baseline:
        cells = cells_to_predict(distributions, qkeys, infer.groups)
        for name in [args.baseline] if args.baseline else infer.baselines:
            path = prediction_path(infer.dataset, name, "baseline", "none", infer.out_dir)
            frame = baseline_predictions(name, questions, distributions, cells, infer.dataset, k=infer.k_similar)
            write_predictions(frame, path)
            print(f"{name}: {len(frame)} cells ({int(frame['failed'].sum())} failed) -> {path}")
        return 0
    if not args.model or not args.method:
        raise ConfigError("infer: give --model NAME and --method METHOD, or --baseline NAME (or --baselines)")
    (models,) = load_params("models", path=args.params)
    assert isinstance(models, ModelsParams)
    return _run_model(args, infer, models.entry(args.model), questions, distributions, qkeys)


def _run_model(args, infer, entry, questions, distributions, qkeys) -> int:
    from opinionbench.elicit.base import MethodSettings
    from opinionbench.inference.predictions import prediction_path
    from opinionbench.inference.runner import InferenceRun, steering_cells
    from opinionbench.models.registry import load_backend
    from opinionbench.steering import SteeringData

    settings = MethodSettings(
        combine=infer.combine, option_orders=infer.option_orders, sequence_n=infer.sequence.n,
        sequence_mode=infer.sequence.mode, temperature=infer.sequence.temperature,
        max_tokens=infer.verbalized_max_tokens, seed=infer.seed,
    )
    data = SteeringData(questions, distributions, k_shots=infer.k_shots, persona_style=infer.persona_style)
    backend = load_backend(entry.backend, entry.model, entry.backend_settings())
    all_failed = True
    try:
        for steering in infer.steerings:
            cells = steering_cells(distributions, qkeys, steering, infer.groups)
            run = InferenceRun(
                backend, args.method, steering, questions, data, settings, dataset=infer.dataset,
                out_path=prediction_path(infer.dataset, args.model, args.method, steering, infer.out_dir),
                parts_dir=infer.parts_dir / infer.dataset / args.model / args.method / steering,
                chunk_size=infer.chunk_size, retry_failed=infer.retry_failed,
            )
            s = run.run(cells, progress=not args.no_progress)
            all_failed &= s.cells > 0 and s.failed == s.cells
            print(f"{args.model} {args.method}/{steering}: {s.cells} cells, {s.computed} computed, "
                  f"{s.reused} reused, {s.failed} failed -> {s.path}")
    finally:
        backend.close()
    if all_failed:
        print(f"error: {args.model} {args.method}: every cell failed (see the `error` column)")
        return 2
    return 0
