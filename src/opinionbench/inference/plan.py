"""One model's run over every steering: a predictions table per steering, as params.yaml `infer:` describes it.

Why here and not in the `infer` stage: the stage stays "params -> library -> outputs", and a
run is the same for every caller (stage, tests, benchmarks). The plan is plain values; config
(`InferParams.run_plan`) fills it from params.yaml, so a knob is read in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opinionbench.elicit.base import MethodSettings
from opinionbench.inference.cells import cells_to_predict
from opinionbench.inference.predictions import prediction_path
from opinionbench.inference.runner import InferenceRun, RunSummary
from opinionbench.models.base import Backend
from opinionbench.steering.base import SteeringData


@dataclass(frozen=True)
class RunPlan:
    """What a model's run needs besides the model and the method."""

    dataset: str                                  # name in the prediction paths
    steerings: Sequence[str]                      # one predictions table each
    groups: Mapping[str, Sequence[str]] | None    # attribute -> groups steered to; None = every group
    settings: MethodSettings                      # the method's knobs (in every request hash)
    k_shots: int                                  # few-shot examples
    persona_style: str                            # persona steering's style
    neighbours: Path                              # the neighbours table (few-shot examples)
    out_dir: Path                                 # predictions root
    parts_dir: Path                               # resumable chunks
    chunk_size: int = 16
    max_attempts: int = 3                         # a failed cell is computed again until tried this often
    knobs: Mapping[str, Any] = field(default_factory=dict)  # recorded with the predictions, under params.yaml names


def run_steerings(backend: Backend, model: str, method: str, plan: RunPlan, questions: pd.DataFrame,
                  distributions: pd.DataFrame, qkeys: Sequence[str], *, progress: bool = True,
                  model_settings: Mapping[str, Any] | None = None) -> Iterator[tuple[str, RunSummary]]:
    """One predictions table per `plan.steerings` entry, each yielded as soon as it is written.

    `model_settings` (the `models:` entry) is recorded with the predictions as `model.<knob>`."""
    knobs = dict(plan.knobs) | {f"model.{k}": v for k, v in (model_settings or {}).items()}
    data = SteeringData(questions, distributions, k_shots=plan.k_shots, persona_style=plan.persona_style,
                        neighbours=plan.neighbours)
    for steering in plan.steerings:
        run = InferenceRun(
            backend, method, steering, questions, data, plan.settings, dataset=plan.dataset,
            out_path=prediction_path(plan.dataset, model, method, steering, plan.out_dir),
            parts_dir=plan.parts_dir / plan.dataset / model / method / steering,
            chunk_size=plan.chunk_size, max_attempts=plan.max_attempts, knobs=knobs,
        )
        yield steering, run.run(cells_to_predict(distributions, qkeys, plan.groups, steering=steering), progress=progress)
