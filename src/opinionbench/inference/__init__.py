"""Inference: from a dataset's questions to predictions tables (runner, predictions I/O, baselines).

`baselines_registry` names the weightless baselines (inference/baselines.py) for params.yaml
(`infer.baselines`) and the `infer-baseline` stage; adding one is a registered function plus one
line below. (The registry is not called `baselines`: that is the module's name.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opinionbench.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

baselines_registry: Registry[Callable[..., pd.DataFrame]] = Registry("baseline", {
    "uniform": "opinionbench.inference.baselines",
    "overall-prior": "opinionbench.inference.baselines",
    "similar-questions": "opinionbench.inference.baselines",
})
