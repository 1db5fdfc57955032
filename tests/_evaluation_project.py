"""A throwaway project directory for the calibrate/evaluate stage tests: the sample build plus
synthetic predictions files in the documented layout (`<dataset>/<model>/<method>/<steering>`).

The synthetic model is the truth blurred toward uniform (so its temperature is known to be
< 1) with a little seeded noise; its steered rows are the group's truth mixed with the public's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from opinionbench.inference.predictions import prediction_path, write_predictions
from opinionbench.io import write_parquet
from opinionbench.survey.build import build_waves
from opinionbench.tables import OVERALL

DATASET = "sample"
SECRET = "sk-test-SECRET-0123456789"


def make_project(root: Path, sample_sav: Path, tracking_uri: str | None = None, tracking: bool = False) -> Path:
    result = build_waves([sample_sav], workers=1)
    write_parquet(result.questions, root / "data/build/questions.parquet")
    write_parquet(result.distributions, root / "data/build/distributions.parquet")
    params = {
        "build": {"workers": 1, "out_dir": "data/build"},
        "datasets": {"distributional_alignment": None, "out_dir": "data/datasets"},
        "calibrate": {"calibration_fraction": 0.5, "seed": 0, "objective": "tv"},
        "evaluate": {"bootstrap": 200, "seed": 0},
        "tracking": {"enabled": tracking, **({"tracking_uri": tracking_uri} if tracking_uri else {})},
        # what calibrate and evaluate score: the declared tables (the synthetic `toy` files below)
        "infer": {"dataset": DATASET, "run": ["toy"], "baselines": []},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_synthetic_predictions(root, result.questions, result.distributions)
    return root


def _row(qkey, attribute, group, probs, model, method, steering, raw_reply=None):
    return {"qkey": qkey, "attribute": attribute, "group": group, "probs": list(map(float, probs)),
            "out_of_option_mass": 0.01 if method == "logprobs" else np.nan, "raw_reply": raw_reply, "failed": False,
            "error": None, "template_hash": f"tmpl-{steering}", "model_id": f"toy/{model}", "model_revision": "r1",
            "method": method, "steering": steering, "dataset": DATASET}


def blur(p: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(p, 1e-9, 1)) / temperature
    e = np.exp(logits - logits.max())
    return e / e.sum()


def write_synthetic_predictions(root: Path, questions: pd.DataFrame, distributions: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    truth = {(q, a, g): np.asarray(p, float) for q, a, g, p in distributions[["qkey", "attribute", "group", "probs"]].itertuples(index=False)}
    qkeys = list(questions["qkey"])
    out = root / "data/predictions"
    # Unsteered: the public's distribution, over-sharpened (T=0.5), so temperature scaling should flatten it.
    for method, noise in (("logprobs", 0.05), ("verbalized", 0.1), ("sequence", 0.2)):
        rows = []
        for q in qkeys:
            p = blur(truth[(q, OVERALL, OVERALL)], 0.5) if method == "logprobs" else truth[(q, OVERALL, OVERALL)]
            p = np.abs(p + rng.normal(0, noise, p.size)) + 1e-6
            reply = f"Answer A (key {SECRET})" if method == "verbalized" else None
            rows.append(_row(q, OVERALL, OVERALL, p / p.sum(), "toy", method, "none", reply))
        write_predictions(pd.DataFrame(rows), prediction_path(DATASET, "toy", method, "none", out))
    # Steered (persona, few-shot): group truth mixed with the public's, per POLPARTY group.
    for steering, weight in (("persona", 0.8), ("few-shot", 0.4)):
        rows = []
        for q in qkeys:
            for g in ("Republican", "Democrat"):
                p = weight * truth[(q, "POLPARTY", g)] + (1 - weight) * truth[(q, OVERALL, OVERALL)]
                rows.append(_row(q, "POLPARTY", g, p, "toy", "logprobs", steering))
        write_predictions(pd.DataFrame(rows), prediction_path(DATASET, "toy", "logprobs", steering, out))
