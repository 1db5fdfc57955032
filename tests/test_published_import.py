"""Prediction importers: a miniature release with a model never seen, the long format, the stage,
then the real release in ../shared (its every file, and the paper's published numbers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opinionbench.cli import main
from opinionbench.config import ConfigError, load
from opinionbench.datasets import import_dataset
from opinionbench.datasets.global_values import question_qkey
from opinionbench.datasets.nytimes import book_qkey
from opinionbench.inference.predictions import read_predictions, run_metadata
from opinionbench.published import PublishedParams, import_predictions, importers
from opinionbench.published.common import REASONS, DatasetCatalog, DatasetView, PredictionImportError, write_result
from opinionbench.published.paper import noise_floor
from opinionbench.tables import PREDICTION_COLUMNS

OQA = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_100"
MODEL = "mistral-large-2407"  # a model directory name no importer has seen
OPTIONS = ["Top priority", "Some priority", "No priority", "Refused"]


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _cell(avg: dict, expected: dict | None = None, **more) -> dict:
    """An entry as the release stores it: Python literals inside strings."""
    return {"avg_actual_results": str(avg), "actual_results": str({k: [v] for k, v in avg.items()}),
            "response": str([str(avg)]), **({"expected_results": str(expected)} if expected is not None else {}), **more}


@pytest.fixture()
def release(tmp_path) -> Path:
    """Datasets (2 OpinionQA questions, 1 book, 1 Global Values question) and the outputs of one new model."""
    root = tmp_path / "release"
    dem = {"No priority": 10, "Refused": 5, "Some priority": 25, "Top priority": 60}  # the release's order: sorted
    rep = {"No priority": 50, "Some priority": 40, "Top priority": 10}  # nobody refused: no "Refused" label
    for attribute, groups in (("POLPARTY", {"Democrat": dem, "Republican": rep}),
                              ("SEX", {"Male": rep, "Female": dem}), ("RACE", {"White": rep})):
        _write(root / OQA / f"{attribute}_data.json", {
            "PRIO_W54": {"MC_options": OPTIONS, "question_text": "How much priority?", **groups},
            "HELP_W36": {"MC_options": ["Helps", "Hurts"], "question_text": "Does it help?",
                         **{g: {"Helps": 3, "Hurts": 1} for g in groups}}})
    _write(root / OQA / "question_similarity_top10.json", {"PRIO_W54": ["HELP_W36"], "HELP_W36": ["PRIO_W54"]})
    pd.DataFrame({"key": ["PRIO_W54"], "question": ["How much priority?"], "references": [str(OPTIONS)],
                  "option_ordinal": ["[1.0, 2.0, 3.0]"], "survey": ["Pew_American_Trends_Panel_W54"]}
                 ).to_csv(root / OQA / "info.csv")
    likert = ["1: Very unlikely", "2: Somewhat unlikely", "3: Somewhat likely", "4: Very likely"]
    counts = dict(zip(likert, [1, 1, 2, 0]))
    _write(root / "nytimes/data.json", {"A Book By Someone": {
        "MC_options": likert, "genre": "Fiction", "summary": "A summary.",
        **{g: counts for g in ("Democrat", "Republican", "Male", "Female")}}})
    _write(root / "Global_Values/data/data.json", {"Is it good?": {
        "MC_options": "['Good', 'Bad', 'DK/Refused']", "countries": ["Japan", "Chile"],
        "Japan": [0.6, 0.2, 0.2], "Chile": [0.25, 0.75, 0.0]}})
    results = root / "results"
    oqa = str(results) + "/opinionqa/{}/" + MODEL + "/{}/Pew_American_Trends_Panel_disagreement_100/{}.json"
    truth = {"A": 0.1, "B": 0.05, "C": 0.25, "D": 0.6}
    _write(Path(oqa.format("express_distribution", "task1", "POLPARTY/Democrat")), {
        "PRIO_W54": _cell({"A": 0.1, "B": 0.1, "C": 0.2, "D": 0.6}, truth),      # letters = sorted labels
        "HELP_W36": _cell({"A": 0.0, "B": 0.0}, {"A": 0.75, "B": 0.25}),       # the release's failed parse
        "GONE_W1": _cell({"A": 1.0}, {"A": 1.0}),                               # not a question of the dataset
    })
    _write(Path(oqa.format("express_distribution", "task1", "POLPARTY/Republican")), {
        "PRIO_W54": _cell({"A": 0.2, "B": 0.3, "C": 0.4, "D": 0.1}, {"A": 0.5, "B": 0.4, "C": 0.1}),  # 4 letters, 3 labels
    })
    _write(Path(oqa.format("express_distribution", "task1", "CREGION/South")), {
        "PRIO_W54": _cell({"A": 0.5, "B": 0.5, "C": 0.0}, {"A": 0.5, "B": 0.5, "C": 0.0}),  # no such group of ours
    })
    _write(Path(oqa.format("rescaled_model_logprobs", "task3_easy_hard", "SEX/Male")), {
        "PRIO_W54": _cell({"A": 0.5, "B": 0.3, "C": 0.2}, {"A": 0.5, "B": 0.4, "C": 0.1}),
    })
    _write(Path(oqa.format("sequence", "task0", "NONE/Democrat")), {
        "PRIO_W54": _cell({"A": 0.2, "B": 0.0, "C": 0.3, "D": 0.5}, None,
                          expected_results_POLPARTY_Democrat=str(truth), expected_results_SEX_Male="{'A': 0.5}"),
    })
    _write(results / "nytimes/model_logprobs" / MODEL / "task1/SEX/Female.json", {
        "A Book By Someone": _cell({"A": 0.5, "B": 0.2, "C": 0.1, "D": 0.1}, {"A": 0.25, "B": 0.25, "C": 0.5, "D": 0.0}),
    })
    _write(results / "globalvalues/sequence" / MODEL / "task1/globalvalues/1.json", {
        "Is it good?": _cell({"A": 0.2, "B": 0.6, "C": 0.2}, {"A": 0.25, "B": 0.75, "C": 0.0}),
    })
    _write(results / "opinionqa/express_distribution" / MODEL / "task9/x/A/B.json", {})  # a task nobody knows
    (results / "leaderboard_distrib_alignment.csv").write_text("Model Name,Dataset,Task Type,Alignment Mean,Alignment Error\n")
    return root


def _catalog(root: Path) -> DatasetCatalog:
    views = {}
    for name in ("opinionqa_100", "nytimes", "global_values"):
        ds = import_dataset(name, root)
        views[name] = DatasetView.from_tables(name, ds.questions, ds.distributions)
    return DatasetCatalog(root / "no-datasets-dir", extra=views)


def _row(frames, dataset, method, steering, qkey, attribute, group, calibrated=False):
    key = next(k for k in frames if (k.dataset, k.method, k.steering, k.calibrated) == (dataset, method, steering, calibrated))
    frame = frames[key].set_index(["qkey", "attribute", "group"])
    return frame.loc[(qkey, attribute, group)]


def test_release_of_a_new_model_maps_letters_to_each_datasets_options(release):
    result = import_predictions("distributional-alignment", release, _catalog(release))
    frames = result.frames()
    assert {k.model for k in frames} == {MODEL}
    # OpinionQA letters follow the group's sorted labels: A No, B Refused, C Some, D Top priority.
    row = _row(frames, "opinionqa_100", "verbalized", "persona", "PRIO_W54", "POLPARTY", "Democrat")
    np.testing.assert_allclose(row["probs"], np.array([0.6, 0.2, 0.1]) / 0.9)  # Top, Some, No (Refused apart)
    assert row["out_of_option_mass"] == pytest.approx(0.1) and not row["failed"]
    assert row["source_file"].endswith("POLPARTY/Democrat.json") and row["source"] == "published"
    assert row["importer"] == "distributional-alignment" and row["model_id"] == MODEL
    # The unsteered task0 prompt listed the Democrats' labels; its row is Overall/Overall.
    row = _row(frames, "opinionqa_100", "sequence", "none", "PRIO_W54", "Overall", "Overall")
    np.testing.assert_allclose(row["probs"], [0.5, 0.3, 0.2])  # D Top, C Some, A No
    # Their temperature-scaled log-probs are a calibrated run of method logprobs.
    row = _row(frames, "opinionqa_100", "logprobs", "few-shot", "PRIO_W54", "SEX", "Male", calibrated=True)
    np.testing.assert_allclose(row["probs"], [0.2, 0.3, 0.5])  # Male labels: No, Some, Top
    # NYT: the book's options in order; log-probs keep what the letters miss out of the options.
    row = _row(frames, "nytimes", "logprobs", "persona", book_qkey("A Book By Someone"), "SEX", "Female")
    np.testing.assert_allclose(row["probs"], np.array([0.5, 0.2, 0.1, 0.1]) / 0.9)
    assert row["out_of_option_mass"] == pytest.approx(0.1)
    # Global Values: file 1 is the question's second country; DK/Refused is kept apart.
    row = _row(frames, "global_values", "sequence", "persona", question_qkey("Is it good?"), "COUNTRY", "Chile")
    np.testing.assert_allclose(row["probs"], [0.25, 0.75])
    assert row["out_of_option_mass"] == pytest.approx(0.2)


def test_every_mismatch_is_a_failed_row_with_its_reason(release):
    result = import_predictions("distributional-alignment", release, _catalog(release))
    frames = result.frames()
    errors = {(r.qkey, r.group): r.error.split(":")[0] for f in frames.values() for r in f.itertuples() if r.failed}
    assert errors == {("HELP_W36", "Democrat"): "unparsable_reply", ("GONE_W1", "Democrat"): "question_not_in_dataset",
                      ("PRIO_W54", "Republican"): "letters_do_not_match_options",
                      ("PRIO_W54", "South"): "group_not_in_dataset"}
    failed = next(f for f in frames.values() if f["failed"].any())
    assert (failed.loc[failed["failed"], "probs"].map(len) == 0).all()
    report = result.report()
    assert report["files"] == {"found": 9, "imported": 7, "not_imported": {"not_model_output": 1, "unknown_task": 1}}
    assert report["cells"]["failed_by_reason"] == {"unparsable_reply": 1, "question_not_in_dataset": 1,
                                                   "letters_do_not_match_options": 1, "group_not_in_dataset": 1}
    assert report["unexplained_failures"] == 0 and set(report["reasons"]) <= set(REASONS)


def test_written_runs_are_predictions_with_provenance(release, tmp_path):
    result = import_predictions("distributional-alignment", release, _catalog(release))
    written = write_result(result, tmp_path / "data/published")
    calibrated = [p for k, p in written.items() if k.calibrated]
    assert [p.relative_to(tmp_path / "data/published").parts[:4] for p in calibrated] == [
        ("calibrated", "opinionqa_100", MODEL, "logprobs")]
    frame = read_predictions(calibrated[0])
    assert list(frame.columns[:len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    meta = run_metadata(pd.read_parquet(calibrated[0]))
    assert meta["source"] == "published" and meta["calibrated_by"] == "source" and "in-sample" in meta["calibration"]
    assert meta["release_output_type"] == "rescaled_model_logprobs" and meta["source_files"]


def test_long_format_by_label_by_index_and_as_lists(release, tmp_path):
    catalog = _catalog(release)
    gv = question_qkey("Is it good?")
    rows = [("global_values", gv, "COUNTRY", "Japan", "m1", "verbalized", "persona", o, p)
            for o, p in (("Good", 0.5), ("Bad", 0.3), ("DK/Refused", 0.2))]
    rows += [("opinionqa_100", "PRIO_W54", "Overall", "Overall", "m1", "logprobs", "none", o, p)
             for o, p in (("Top priority", 0.5), ("Some priority", 0.2), ("No priority", 0.1))]
    rows += [("opinionqa_100", "PRIO_W54", "SEX", "Male", "m1", "verbalized", "persona", "Maybe", 1.0),
             ("opinionqa_100", "NOPE_W1", "SEX", "Male", "m1", "verbalized", "persona", "Top priority", 1.0),
             ("opinionqa_100", "PRIO_W54", "SEX", "Male", "m1", "guessing", "persona", "Top priority", 1.0)]
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=["dataset", "qkey", "attribute", "group", "model", "method", "steering", "option",
                                "probability"]).to_csv(path, index=False)
    frames = import_predictions("long", path, catalog).frames()
    row = _row(frames, "global_values", "verbalized", "persona", gv, "COUNTRY", "Japan")
    np.testing.assert_allclose(row["probs"], [0.625, 0.375])
    assert row["out_of_option_mass"] == pytest.approx(0.2) and row["source_file"] == "runs.csv"
    row = _row(frames, "opinionqa_100", "logprobs", "none", "PRIO_W54", "Overall", "Overall")
    np.testing.assert_allclose(row["probs"], np.array([0.5, 0.2, 0.1]) / 0.8)
    assert row["out_of_option_mass"] == pytest.approx(0.2)
    errors = sorted(r.error.split(":")[0] for f in frames.values() for r in f.itertuples() if r.failed)
    assert errors == ["malformed_entry", "option_not_in_dataset", "question_not_in_dataset"]
    # In option order: one row per option by index, or one row per cell with the list.
    jsonl = tmp_path / "runs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"dataset": "nytimes", "qkey": book_qkey("A Book By Someone"), "attribute": "SEX",
                                           "group": "Male", "model": "m2", "method": "sequence", "steering": "few-shot",
                                           "probs": probs, "calibrated": cal})
                               for probs, cal in (([0.1, 0.2, 0.3, 0.4], False), ([0.4, 0.3, 0.2, 0.1], True))))
    frames = import_predictions("long", jsonl, catalog).frames()
    assert sorted(k.calibrated for k in frames) == [False, True]
    indexed = tmp_path / "runs.parquet"
    pd.DataFrame({"dataset": "opinionqa_100", "qkey": "HELP_W36", "attribute": "POLPARTY", "group": "Democrat",
                  "model": "m3", "method": "verbalized", "steering": "persona", "option_index": [0, 1, 2],
                  "probability": [0.5, 0.5, 0.0]}).to_parquet(indexed)
    (frame,) = import_predictions("long", indexed, catalog).frames().values()
    assert frame["error"].iloc[0].startswith("option_not_in_dataset")
    with pytest.raises(PredictionImportError, match=r"runs.txt: not .csv"):
        import_predictions("long", tmp_path / "runs.txt", catalog)


def test_registry_and_params(tmp_path):
    assert {"distributional-alignment", "long"} <= set(importers.names())
    params = tmp_path / "params.yaml"
    params.write_text("published:\n  sources: [{importer: nope, path: x.csv}]\n")
    with pytest.raises(ConfigError, match=r"published\.sources\.0\.importer: .*unknown prediction importer 'nope'"):
        load(PublishedParams, params)
    params.write_text("published:\n  distributional_alignment: /r\n  sources: [{importer: long, path: x.csv}]\n")
    assert [s.importer for s in load(PublishedParams, params).all_sources()] == ["distributional-alignment", "long"]


def test_noise_floor_is_the_exact_expectation():
    p = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    draws = rng.multinomial(30, p, size=200_000) / 30
    assert noise_floor(p) == pytest.approx(0.5 * np.abs(draws - p).sum(axis=1).mean(), abs=1e-3)
    assert noise_floor(np.array([1.0, 0.0])) == 0.0


def test_stage_null_imports_nothing_then_the_release(release, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("published:\n  distributional_alignment: null\n")
    assert main(["import-predictions"]) == 0
    assert json.loads(Path("data/published/import_report.json").read_text())["cells"] == 0
    assert Path("data/reports/paper/README.md").exists()
    Path("params.yaml").write_text(f"datasets:\n  distributional_alignment: {release}\n  include: [opinionqa_100, nytimes,"
                                   f" global_values]\npublished:\n  distributional_alignment: {release}\n  bootstrap: 50\n")
    assert main(["import-datasets"]) == 0
    Path("data/audit").mkdir()
    pd.DataFrame([{"dataset": "opinionqa_100", "qkey": "PRIO_W54", "attribute": "POLPARTY", "group": "Democrat",
                   "status": "release_lost_answers", "reason": "release has no count for 'None' (4 respondents)"}]
                 ).to_parquet(Path("data/audit").resolve() / "group_counts.parquet")  # as the audit writes it
    assert main(["import-predictions"]) == 0
    report = json.loads(Path("data/published/import_report.json").read_text())
    assert report["unexplained_failures"] == 0 and report["failed"] == 4
    table = pd.read_csv("data/reports/paper/distributional_alignment.csv")
    assert {"model", "method", "alignment_mean", "alignment_error", "n_opinionqa", "n_nytimes", "n_globalvalues",
            "published", "difference", "alignment_mean_our_truth"} <= set(table.columns)
    row = table[(table["model"] == MODEL) & (table["method"] == "V")].iloc[0]
    assert (row["n_opinionqa"], row["n_nytimes"], row["n_globalvalues"]) == (3, 0, 0)  # the paper's groups only
    assert math.isnan(row["alignment_mean"])  # no NYT / Global Values cells: no three-dataset mean
    every = pd.read_csv("data/reports/paper/distributional_alignment_all.csv")
    cell = every[(every["dataset"] == "opinionqa") & (every["task"] == "task1") & (every["model"] == MODEL)
                 & (every["method"] == "V")].iloc[0]
    # PRIO 0.05, HELP scored as the paper does (all-zero reply: 0.5), GONE 0; Republican's TV undefined.
    assert cell["n"] == 3 and cell["mean"] == pytest.approx((0.05 + 0.5 + 0.0) / 3)
    assert Path("data/reports/paper/k2s_gap.csv").exists()
    truths = pd.read_csv("data/reports/paper/truth_differences.csv").set_index(["qkey", "attribute", "group"])
    flagged = truths.loc[("PRIO_W54", "POLPARTY", "Democrat")]  # their truth counts "Refused"; the audit: lost answers
    assert flagged["status"] == "refusal_counted_as_answer" and flagged["audit_status"] == "release_lost_answers"
    assert (book_qkey("A Book By Someone"), "SEX", "Female") not in truths.index  # same truth: not listed
    assert "paper tables" in capsys.readouterr().out


@pytest.mark.integration
def test_real_release_imports_every_file_and_reproduces_the_paper(shared_dir, tmp_path):
    root = shared_dir / "data" / "distributional_alignment"
    if not (root / "results").is_dir():
        pytest.skip(f"distributional-alignment release not available at {root}")
    from opinionbench.published.paper import alignment_table, k2s_table, reference_rows, score_cells

    catalog = _catalog(root)
    result = import_predictions("distributional-alignment", root, catalog)
    report = result.report()
    assert report["unexplained_failures"] == 0
    assert report["files"]["found"] == report["files"]["imported"] + report["files"]["not_imported"]["not_model_output"]
    assert set(report["cells"]["failed_by_reason"]) <= {"unparsable_reply", "group_not_in_dataset",
                                                        "no_mass_on_options", "nan_probabilities"}
    scored = score_cells(result.release_cells, catalog, root)
    main_table = alignment_table(scored, reference_rows(scored, catalog), root, n_boot=200, seed=0, confidence=0.95)
    rows = main_table.set_index(["model", "method"])
    for model, method, published in (("gpt-4", "V", 0.2290), ("anthropic_opus", "Seq", 0.3251),
                                     ("gpt-3.5-turbo-0125", "TS-Log-p", 0.2963)):
        assert rows.loc[(model, method), "alignment_mean"] == pytest.approx(published, abs=0.005)
    compared = main_table[main_table["status"].isin(["matches", "differs"])]
    assert len(compared) == 14 and (compared["status"] == "matches").all()
    k2s = k2s_table(main_table, root).set_index("model")
    assert k2s.loc["gpt-4", "k2s_gap"] == pytest.approx(0.2135, abs=0.005)
