"""Imported runs scored by our code (leaderboard, page, MLflow), like-with-like ranking, oracles,
degenerate temperatures, and SimBench's score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from _evaluation_project import make_project
from opinionbench.cli import main
from opinionbench.scoring import metrics
from opinionbench.scoring import registry as reg
from opinionbench.scoring.evaluation import PredictionFile, discover
from opinionbench.scoring.leaderboard import DEGENERATE, evaluate_dataset, leaderboard_frame
from opinionbench.scoring.ranking import same_cell_scores
from test_published_import import MODEL, release  # noqa: F401 - the miniature release fixture

BOOT = {"n_boot": 50, "seed": 0, "confidence": 0.95}


def test_evaluate_scores_imported_runs_in_csv_page_and_mlflow(release, tmp_path, monkeypatch):  # noqa: F811
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    Path("params.yaml").write_text(yaml.safe_dump({
        "datasets": {"distributional_alignment": str(release), "include": ["opinionqa_100", "nytimes", "global_values"]},
        "published": {"distributional_alignment": str(release), "bootstrap": 50},
        "evaluate": {"bootstrap": 50},
        # absolute: MLflow caches one engine per URI string, and other tests use the relative one
        "tracking": {"enabled": True, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }))
    for stage in ("import-datasets", "import-predictions", "calibrate", "evaluate"):
        assert main([stage]) == 0, stage
    board = pd.read_csv("data/reports/leaderboards/opinionqa_100.csv").set_index("entry")
    entry = f"{MODEL} · verbalized · persona"
    assert board.loc[entry, "source"] == "published" and board.loc[entry, "kind"] == "model"
    theirs = f"{MODEL} · logprobs+T in-sample · few-shot"  # rescaled_model_logprobs: flagged in-sample
    assert board.loc[theirs, "calibrated_by"] == "in-sample" and pd.isna(board.loc[theirs, "temperature"])
    assert (board.loc[board["kind"] == "reference", "source"].isna()).all()
    assert "simbench_groups" in board.columns and "rank" in board.columns
    page = Path("data/reports/index.html").read_text()
    assert entry in page and ">published<" in page and "oracle" in page
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("opinionbench/opinionqa_100")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="pandas")
    run = runs[runs["tags.mlflow.runName"] == entry].iloc[0]
    assert run["tags.source"] == "published" and run["tags.opinionbench.kind"] == "model"
    inputs = mlflow.MlflowClient().get_run(run["run_id"]).inputs.dataset_inputs
    contexts = {i.dataset.name: [t.value for t in i.tags if t.key == "mlflow.data.context"] for i in inputs}
    source = [i.dataset for i in inputs if contexts[i.dataset.name] == ["source"]]
    assert len(source) == 1 and str(release) in source[0].source
    assert "source_file" in source[0].schema and "cells" in source[0].schema  # the files, with their cell counts


def _scored(cells: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Scored group rows: (qkey, group, representativeness); TV = 1 − rep, uniform's TV 0.5."""
    return pd.DataFrame([{"qkey": q, "attribute": "POLPARTY", "group": g, "representativeness": r, "tv": 1 - r,
                          "tv_uniform": 0.5, "wasserstein": 1 - r, "js_similarity": r} for q, g, r in cells])


def test_ranking_is_on_the_cells_every_ranked_entry_answered():
    a = _scored([("q1", "Dem", 0.99), ("q2", "Dem", 0.40)])  # own mean 0.695
    b = _scored([("q2", "Dem", 0.50), ("q3", "Dem", 0.60)])  # own mean 0.55: worse overall, better on q2
    oracle = _scored([("q1", "Dem", 1.0)])  # not ranked: its cells do not shrink the comparison
    scored = {"a": a, "b": b, "oracle": oracle}
    same = same_cell_scores(scored, {"a", "b"}, BOOT)
    assert same["a"]["same_questions_groups"] == 1 and same["a"]["same_cells_groups"] == 1
    assert same["a"]["rep_groups_same"] == pytest.approx(0.40) and same["b"]["rep_groups_same"] == pytest.approx(0.50)
    assert math.isnan(same["oracle"]["rep_groups_same"])  # q1 is not a shared cell
    rows = [{"entry": e, "kind": k, "rep_groups": reg.question_means(scored[e], "representativeness").mean(),
             **same[e]} for e, k in (("a", "model"), ("b", "baseline"), ("oracle", "oracle"))]
    rows.append({"entry": "humans", "kind": "reference", "rep_groups": 0.9})
    frame = leaderboard_frame(rows)
    assert list(frame["entry"]) == ["b", "a", "oracle", "humans"]  # ranked on q2, not on own means
    assert list(frame["rank"][:2]) == [1, 2] and frame["rank"][2:].isna().all()
    assert frame.set_index("entry").loc["a", "rep_groups"] == pytest.approx(0.695)  # own score kept beside


def test_oracle_is_its_own_kind():
    assert PredictionFile(Path("x"), "d", "overall-prior", "baseline", "none").kind == "oracle"
    assert PredictionFile(Path("x"), "d", "uniform", "baseline", "none").kind == "baseline"
    assert PredictionFile(Path("x"), "d", "gpt-4", "verbalized", "none").kind == "model"


def test_a_temperature_at_the_search_bound_is_flagged_not_ranked(tmp_path, sample_sav, monkeypatch):
    root = make_project(tmp_path, sample_sav)
    monkeypatch.chdir(root)
    assert main(["calibrate"]) == 0
    files = discover(root / "data/predictions") + discover(root / "data/calibrated/predictions", calibrated=True)
    at_bound = {("sample", "toy", s): math.exp(5) for s in ("none", "persona", "few-shot")}  # the sample run's 148.413
    result = evaluate_dataset("sample", root / "data/build", files, at_bound, n_boot=50, seed=0, confidence=0.95,
                              reliability_bins=5)
    board = result.board.set_index("entry")
    scaled = board.loc["toy · logprobs+T · none"]
    assert scaled["flag"] == DEGENERATE and pd.isna(scaled["rank"])
    assert board.loc["overall-prior · baseline · none", "kind"] == "oracle"
    assert pd.isna(board.loc["overall-prior · baseline · none", "rank"])
    assert board.loc["toy · logprobs · none", "rank"] >= 1
    calib = result.calibration.set_index("steering").loc["none"]
    assert bool(calib["temperature_degenerate"]) and pd.isna(calib["temperature"])


def test_simbench_score_by_hand():
    pred = [np.array([1.0, 0.0]), np.array([0.5, 0.5, 0.0]), np.array([0.2, 0.8])]
    target = [np.array([0.5, 0.5]), np.array([1.0, 0.0, 0.0]), np.array([0.2, 0.8])]
    ordinal = [np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0])]
    rows = pd.DataFrame({"qkey": ["q1", "q2", "q2"], "attribute": "SEX", "group": ["Male", "Male", "Female"]})
    rows = rows.assign(**metrics.row_scores(pred, target, ordinal, reg.row_formulas()))
    # TV: 0.5, 0.5, 0; uniform's TV: 0, 2/3, 0.3. Per question: q1 (0.5, 0), q2 (0.25, 0.4833).
    assert rows["tv_uniform"].tolist() == pytest.approx([0.0, 2 / 3, 0.3])
    out = reg.summarise_rows(reg.metric_specs.get("simbench_groups"), rows, BOOT)
    tv, tv_uniform = (0.5 + 0.25) / 2, (0.0 + (2 / 3 + 0.3) / 2) / 2
    assert out["simbench_groups"] == pytest.approx(100 * (1 - tv / tv_uniform))
    assert out["simbench_groups_lo"] <= out["simbench_groups_hi"]
    perfect = reg.summarise_rows(reg.metric_specs.get("simbench_groups"), rows.assign(tv=0.0), BOOT)
    assert perfect["simbench_groups"] == pytest.approx(100.0)
    assert json.dumps(reg.board_columns())  # registered: a leaderboard column like any other
