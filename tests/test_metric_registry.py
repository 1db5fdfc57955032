"""Metrics that describe themselves: one registration reaches every output of the evaluate stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _evaluation_project import make_project
from opinionbench.cli import main
from opinionbench.registry import Registry
from opinionbench.scoring import registry
from opinionbench.scoring.registry import MetricSpec


def test_builtin_columns_and_views_come_from_the_registry():
    from opinionbench.scoring.html_report import page_columns
    from opinionbench.scoring.leaderboard import leaderboard_columns
    from opinionbench.scoring.report import metric_keys
    from opinionbench.tracking.runs import run_metrics

    assert [s.name for s in registry.row_metrics()] == ["tv", "wasserstein", "representativeness", "js_similarity",
                                                        "tv_uniform"]  # the last: scoring/simbench.py
    simbench = ["simbench_groups", "simbench_groups_lo", "simbench_groups_hi",
                "simbench_overall", "simbench_overall_lo", "simbench_overall_hi"]
    assert leaderboard_columns()[24:] == [
        "rep_overall", "rep_overall_lo", "rep_overall_hi", "tv_overall", "tv_overall_lo", "tv_overall_hi",
        "js_overall", "rep_groups", "rep_groups_lo", "rep_groups_hi", "tv_groups", "tv_groups_lo", "tv_groups_hi",
        "rep_worst_group", "worst_group", "js_groups", "js_skew", "most_similar_group", *simbench]
    assert leaderboard_columns()[13:24] == [  # the ranking's: on the cells every ranked entry answered
        "rank", "same_questions_groups", "same_cells_groups", "same_questions_overall", "same_cells_overall",
        "rep_overall_same", "tv_overall_same", "rep_groups_same", "tv_groups_same", "simbench_groups_same",
        "simbench_overall_same"]
    assert [s.name for s in registry.shown_in("markdown")] == [
        "rep_overall", "rep_groups", "tv_groups", "tv_overall", "rep_worst_group", "simbench_groups"]
    assert page_columns() == ["rank", "entry", "kind", "source", "rep_groups_same", "rep_overall_same",
                              "simbench_groups_same", "rep_groups", "rep_groups_lo", "rep_groups_hi", "tv_groups",
                              "rep_overall", "rep_worst_group", "simbench_groups", "failed_rate", "n_questions", "flag"]
    assert metric_keys() == ["rep_overall", "tv_overall", "rep_groups", "tv_groups", "rep_worst_group", "js_groups",
                             "js_skew", "simbench_groups", "simbench_overall", "failed_rate", "temperature"]
    assert set(run_metrics()) == {"rep_overall", "rep_overall_lo", "rep_overall_hi", "tv_overall", "rep_groups",
                                  "rep_groups_lo", "rep_groups_hi", "tv_groups", "tv_groups_lo", "tv_groups_hi",
                                  "rep_worst_group", "js_overall", "js_groups", "js_skew", "simbench_groups",
                                  "simbench_overall", "failed_rate", "n_questions"}
    assert all(s.label and s.description for s in registry.specs())


def test_a_spec_must_say_what_it_computes_or_summarises():
    with pytest.raises(ValueError, match="row formula"):
        MetricSpec("nothing", "n", "n", True)
    with pytest.raises(ValueError, match="unknown aggregate"):
        MetricSpec("odd", "o", "o", True, of="tv", rows="groups", aggregate="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a registered row metric"):
        registry.register(MetricSpec("rep_median", "r", "r", True, of="rep", rows="groups"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(MetricSpec("tv", "t", "t", False, of="tv", rows="groups"))


def _modal_agreement(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    """1 where the prediction's most likely option is the humans' most chosen one."""
    return (np.argmax(pred, axis=1) == np.argmax(target, axis=1)).astype(float)


@pytest.fixture
def toy_metric(monkeypatch):
    """The built-in registry plus one toy metric, registered as a user would (one entry)."""
    copy: Registry[MetricSpec] = Registry("metric")
    for spec in registry.specs():
        copy.register(spec.name)(spec)
    monkeypatch.setattr(registry, "metric_specs", copy)
    registry.register_metric("modal_agreement", label="Modal agreement", higher_is_better=True, rows="groups",
                             interval=True, description="share of rows whose most likely option is the humans' "
                             "most chosen one")(_modal_agreement)
    return "modal_agreement"


@pytest.mark.slow
def test_one_registration_reaches_csv_metrics_json_page_and_mlflow(toy_metric, tmp_path, sample_sav, monkeypatch):
    import mlflow

    root = tmp_path / "project"
    root.mkdir()
    # An absolute store: MLflow caches stores by URI, and other tests in this process open `sqlite:///mlflow.db`.
    make_project(root, sample_sav, tracking_uri=f"sqlite:///{root / 'mlflow.db'}", tracking=True)
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["evaluate"]) == 0

    board = pd.read_csv(root / "data/reports/leaderboards/sample.csv")
    assert list(board.columns)[-3:] == [toy_metric, f"{toy_metric}_lo", f"{toy_metric}_hi"]
    by = board.set_index("entry")
    persona = by.loc["toy · logprobs · persona", toy_metric]
    assert 0 < persona <= 1 and by.loc["toy · logprobs · persona", f"{toy_metric}_lo"] <= persona
    assert pd.notna(by.loc["humans: other groups (avg)", toy_metric])  # human baselines get it too
    assert "Modal agreement ↑" in (root / "data/reports/leaderboards/sample.md").read_text()

    metrics = json.loads((root / "data/reports/metrics.json").read_text())
    assert metrics["sample"]["toy_logprobs_persona"][toy_metric] == pytest.approx(persona, abs=1e-6)

    page = (root / "data/reports/index.html").read_text()
    assert f"<th>{toy_metric}</th>" in page
    assert f"<dt>{toy_metric}</dt><dd>Modal agreement ↑: share of rows whose most likely option" in page

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("opinionbench/sample")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="pandas")
    run = runs[runs["tags.mlflow.runName"] == "toy · logprobs · persona"].iloc[0]
    assert run[f"metrics.{toy_metric}"] == pytest.approx(persona)
    assert run[f"metrics.{toy_metric}_lo"] <= run[f"metrics.{toy_metric}"] <= run[f"metrics.{toy_metric}_hi"]


def test_a_metric_in_a_module_of_its_own_is_found_through_metric_modules(toy_metric, tmp_path, monkeypatch):
    (tmp_path / "toy_metric_plugin.py").write_text(
        "from opinionbench.scoring.registry import MetricSpec, register\n"
        "register(MetricSpec('tv_spread', 'TV spread', 'best minus worst group TV', False, of='tv', rows='groups',\n"
        "                    aggregate='group_spread', companion='tv_best_group'))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "METRIC_MODULES", ("toy_metric_plugin",))
    from opinionbench.scoring.leaderboard import leaderboard_columns

    assert leaderboard_columns()[-5:] == [toy_metric, f"{toy_metric}_lo", f"{toy_metric}_hi", "tv_spread", "tv_best_group"]


def test_summaries_follow_each_metrics_direction():
    """Worst group and spread rank the groups by the row metric's own direction (TV: lower is better)."""
    rows = pd.DataFrame({"qkey": ["q1", "q1", "q2", "q2"], "attribute": ["P"] * 4, "group": ["a", "b", "a", "b"],
                         "tv": [0.1, 0.5, 0.3, 0.7]})
    worst_tv = MetricSpec("tv_worst_group", "worst (TV)", "d", False, of="tv", rows="groups", aggregate="worst_group",
                          companion="tv_worst")
    assert registry.summarise_rows(worst_tv, rows, {}) == {"tv_worst_group": pytest.approx(0.6), "tv_worst": "P: b"}
    spread = MetricSpec("tv_spread", "spread", "d", False, of="tv", rows="groups", aggregate="group_spread",
                        companion="tv_best")
    assert registry.summarise_rows(spread, rows, {}) == {"tv_spread": pytest.approx(0.4), "tv_best": "P: a"}
    boot = {"n_boot": 50, "seed": 0, "confidence": 0.9}
    mean = registry.summarise_rows(MetricSpec("m", "m", "d", False, of="tv", rows="groups", interval=True), rows, boot)
    assert mean["m"] == pytest.approx(0.4) and mean["m_lo"] <= 0.4 <= mean["m_hi"]
