"""A model's run as params.yaml `infer:` describes it: the method settings and one table per steering.

Why here and not in the `infer` stage: the stage stays "params -> library -> outputs", and the
way params become method settings and runs is the same for every caller (stage, tests,
benchmarks), so a knob is read in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from opinionbench.config import InferParams
from opinionbench.elicit.base import MethodSettings
from opinionbench.inference.cells import cells_to_predict
from opinionbench.inference.predictions import prediction_path
from opinionbench.inference.runner import InferenceRun, RunSummary
from opinionbench.models.base import Backend
from opinionbench.steering.base import SteeringData


def method_settings(infer: InferParams) -> MethodSettings:
    return MethodSettings(
        combine=infer.combine, option_orders=infer.option_orders, sequence_n=infer.sequence.n,
        sequence_mode=infer.sequence.mode, temperature=infer.sequence.temperature,
        max_tokens=infer.verbalized_max_tokens, seed=infer.seed,
    )


def run_knobs(infer: InferParams) -> dict:
    """The `infer:` knobs besides the method settings that shape a predictions table (recorded in it)."""
    return {"infer.k_shots": infer.k_shots, "infer.persona_style": infer.persona_style,
            "infer.groups": infer.groups, "infer.questions.n": infer.questions.n,
            "infer.questions.seed": infer.questions.seed, "infer.questions.waves": list(infer.questions.waves),
            "infer.chunk_size": infer.chunk_size, "infer.dataset": infer.dataset}


def run_steerings(backend: Backend, model: str, method: str, infer: InferParams, questions: pd.DataFrame,
                  distributions: pd.DataFrame, qkeys: Sequence[str], *, progress: bool = True,
                  model_settings: Mapping[str, Any] | None = None) -> Iterator[tuple[str, RunSummary]]:
    """One predictions table per `infer.steerings` entry, each yielded as soon as it is written.

    `model_settings` (the `models:` entry) is recorded with the predictions as `model.<knob>`."""
    settings = method_settings(infer)
    knobs = run_knobs(infer) | {f"model.{k}": v for k, v in (model_settings or {}).items()}
    data = SteeringData(questions, distributions, k_shots=infer.k_shots, persona_style=infer.persona_style,
                        neighbours=infer.neighbours_path())
    for steering in infer.steerings:
        run = InferenceRun(
            backend, method, steering, questions, data, settings, dataset=infer.dataset,
            out_path=prediction_path(infer.dataset, model, method, steering, infer.out_dir),
            parts_dir=infer.parts_dir / infer.dataset / model / method / steering,
            chunk_size=infer.chunk_size, retry_failed=infer.retry_failed, knobs=knobs,
        )
        yield steering, run.run(cells_to_predict(distributions, qkeys, infer.groups, steering=steering), progress=progress)
