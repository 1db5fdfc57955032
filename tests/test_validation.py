"""The validate stage: helper columns, exclusions, and Great Expectations end to end on the sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from opinionbench.cli import main
from opinionbench.errors import ConfigError
from opinionbench.validation import derive
from opinionbench.validation.exclusions import LOW_N_EFF, ExclusionRules, apply_exclusions, load_rules
from opinionbench.validation.words import debris_share, word_share

REPO = Path(__file__).resolve().parents[1]


def _question(qkey: str, question: str, options: list[str], ordinal: list[float] | None = None) -> dict:
    return {"qkey": qkey, "question": question, "options": options,
            "ordinal": ordinal if ordinal is not None else [float(i + 1) for i in range(len(options))],
            "text_source": "codebook"}


def _cell(qkey: str, probs: list[float], attribute: str = "Overall", group: str = "Overall", n_eff: float = 500.0) -> dict:
    return {"qkey": qkey, "attribute": attribute, "group": group, "probs": probs, "refusal_rate": 0.01,
            "n": int(n_eff * 1.2), "n_eff": n_eff}


def test_word_share_separates_wording_from_ocr_garble():
    assert word_share("How important is religion in your life?") == 1.0
    assert word_share("Hovv imp0rtant ls rellgion ln yuor 1ife?") < 0.5
    assert word_share("Do you approve of the way Joe Biden is handling the nation's economy?") >= 0.9
    assert word_share("") == 0.0
    assert debris_share("How often do you ~|~ get news ¬ » ■") > 0.1
    assert debris_share("Do you support {Joe Biden_Donald Trump}?") == 0.0


def test_question_checks_flag_each_defect():
    questions = pd.DataFrame([
        _question("OK_W1", "How would you rate the economy today?", ["Good", "Bad"]),
        _question("DUP_W1", "Do you agree with this statement?", ["Agree", "agree "]),
        _question("NAN_W1", "Do you favor or oppose this policy?", ["Favor", "nan"]),
        _question("ORD_W1", "How much do you trust scientists?", ["A lot", "Some", "None"], [1.0, 3.0, 2.0]),
        _question("ONE_W1", "", ["Only"]),
    ])
    cells = pd.DataFrame([_cell(q, [0.5, 0.5]) for q in ["OK_W1", "DUP_W1", "NAN_W1", "ORD_W1"]])
    checks = derive.question_checks(questions, cells).set_index("qkey")
    assert checks.loc["OK_W1", ["options_unique", "options_no_nan", "ordinal_ok", "has_overall_cell"]].all()
    assert not checks.loc["DUP_W1", "options_unique"]
    assert not checks.loc["NAN_W1", "options_no_nan"]
    assert not checks.loc["ORD_W1", "ordinal_ok"]
    assert checks.loc["ONE_W1", "n_options"] == 1 and checks.loc["ONE_W1", "wording_length"] == 0
    assert not checks.loc["ONE_W1", "has_overall_cell"]


def test_overridden_middle_option_counts_as_ordered():
    # resources/ordinal_overrides.yaml places a trailing "Neither ..." between the poles
    options = ["Helping a lot", "Helping a little", "Hurting a little", "Hurting a lot", "Neither helping nor hurting"]
    from opinionbench.survey.codebook import ordinal_values

    ordinal = ordinal_values("ECONPOOR_W900", options)
    assert ordinal != sorted(ordinal)  # not increasing: the override explains it
    assert derive._ordinal_ok("ECONPOOR_W900", options, ordinal)
    assert not derive._ordinal_ok("ECONPOOR_W900", options, [5.0, 4.0, 3.0, 2.0, 1.0])


def test_distribution_checks_measure_sums_alignment_and_groups():
    questions = pd.DataFrame([_question("A_W1", "How would you rate the economy today?", ["Good", "Bad"])])
    cells = pd.DataFrame([
        _cell("A_W1", [0.25, 0.75]),
        _cell("A_W1", [0.5, 0.6], "SEX", "Female"),
        _cell("A_W1", [0.2, 0.3, 0.5], "SEX", "Male"),
        _cell("A_W1", [1.2, -0.2], "POLPARTY", "Martian"),
        _cell("B_W1", [1.0], "Overall", "Overall"),
    ])
    checks = derive.distribution_checks(cells, questions)
    assert checks.loc[0, "probs_sum_error"] == pytest.approx(0.0)
    assert checks.loc[1, "probs_sum_error"] == pytest.approx(0.1)
    assert not checks.loc[2, "probs_aligned"] and checks.loc[0, "probs_aligned"]
    assert checks.loc[3, "probs_min"] < 0 and checks.loc[3, "probs_max"] > 1 and not checks.loc[3, "group_known"]
    assert not checks.loc[4, "qkey_known"]


def test_provenance_checks_cache_entries_and_toplines(tmp_path):
    from opinionbench.questionnaire.cache import LLMCache

    cache = LLMCache(tmp_path / "llm")
    cache.put("cd" * 32, {"model": "m"}, "{}")
    prov = lambda backend, key, ok, detail: json.dumps(  # noqa: E731
        {"questionnaire": {"correction_backend": backend, "cache_key": key, "topline_ok": ok, "topline_detail": detail}})
    questions = pd.DataFrame({
        "qkey": ["A", "B", "C", "D", "E"],
        "text_source": ["questionnaire", "questionnaire", "codebook", None, "questionnaire"],
        "provenance": [prov("openai", "cd" * 32, True, "within rounding"), prov("openai", "ef" * 32, False, "off by 3.2 points"),
                       None, prov("codebook", None, False, "3 printed values for 4 options"), "{not json"],
    })
    checks = derive.provenance_checks(questions, tmp_path / "llm").set_index("qkey")
    assert list(checks["llm_cache_entry"]) == [True, False, True, True, True]
    assert checks.loc["A", "topline_max_diff"] == 0.0 and checks.loc["B", "topline_max_diff"] == 3.2
    assert np.isnan(checks.loc["C", "topline_max_diff"]) and np.isinf(checks.loc["D", "topline_max_diff"])
    assert not checks.loc["E", "provenance_parsable"] and checks.loc["A", "provenance_parsable"]


def test_low_effective_n_cells_are_dropped_and_counted():
    questions = pd.DataFrame([_question("A_W1", "How would you rate the economy today?", ["Good", "Bad"]),
                              _question("B_W1", "How would you rate the schools today?", ["Good", "Bad"]),
                              _question("C_W1", "EXGRPCT", ["Group 1", "Group 2"])])
    cells = pd.DataFrame([_cell("A_W1", [0.5, 0.5]), _cell("A_W1", [0.5, 0.5], "SEX", "Male", n_eff=12.0),
                          _cell("B_W1", [0.5, 0.5], n_eff=10.0), _cell("B_W1", [0.5, 0.5], "SEX", "Male", n_eff=8.0),
                          _cell("C_W1", [0.5, 0.5])])
    rules = ExclusionRules.model_validate({"wording_patterns": [{"pattern": "^[A-Z0-9_]+$", "reason": "variable name only"}]})
    kept_q, kept_d, excl = apply_exclusions(questions, cells, rules, min_n_eff=30, max_options=30)
    assert list(kept_q["qkey"]) == ["A_W1"]
    assert len(kept_d) == 1 and excl.cells_dropped_low_n_eff == 1
    assert excl.questions == {"B_W1": LOW_N_EFF, "C_W1": "variable name only"}


def test_exclusion_rules_with_a_bad_pattern_name_the_file(tmp_path):
    path = tmp_path / "exclusions.yaml"
    path.write_text(yaml.safe_dump({"wording_patterns": [{"pattern": "([unclosed", "reason": "broken"}]}))
    with pytest.raises(ConfigError, match=r"exclusions.yaml: wording_patterns.0.pattern"):
        load_rules(path)


def test_shipped_exclusion_rules_load():
    rules = load_rules(REPO / "expectations" / "exclusions.yaml")
    assert rules.wording_patterns and all(r.reason for r in rules.wording_patterns)


# --- Great Expectations end to end: the sample passes, a corrupted copy fails with a summary ---

@pytest.fixture(scope="module")
def built_sample(tmp_path_factory, sample_sav) -> Path:
    root = tmp_path_factory.mktemp("validate")
    params = {"data": {"waves_dir": str(sample_sav.parent), "waves": ["W900"], "survey_details": None},
              "build": {"workers": 1, "out_dir": str(root / "data" / "build")}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(root / "params.yaml"), "build"]) == 0
    return root


def _validate(root: Path, build_dir: Path, capsys) -> tuple[int, str, dict]:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["validate"] = {"build_dir": str(build_dir), "suites_dir": str(REPO / "expectations"),
                          "exclusions": str(REPO / "expectations" / "exclusions.yaml"),
                          "out_dir": str(root / "data" / f"validation_{build_dir.name}")}
    path = root / f"params_{build_dir.name}.yaml"
    path.write_text(yaml.safe_dump(params))
    capsys.readouterr()
    rc = main(["--params", str(path), "validate"])
    out = Path(params["validate"]["out_dir"])
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "docs" / "index.html").exists(), "Data Docs are written pass or fail"
    return rc, capsys.readouterr().out, summary


@pytest.mark.slow
def test_sample_build_passes_validation(built_sample, capsys):
    rc, printed, summary = _validate(built_sample, built_sample / "data" / "build", capsys)
    assert rc == 0, printed
    assert printed.startswith("validation PASSED")
    assert summary["success"] and summary["expectations_failed"] == 0 and summary["expectations"] >= 25
    assert summary["questions_validated"] == 12 and summary["cells_dropped_low_n_eff"] > 0
    validated = pd.read_parquet(built_sample / "data" / "validation_build" / "dataset" / "distributions.parquet")
    assert len(validated) == summary["cells_validated"] and validated["n_eff"].min() >= 30


@pytest.mark.slow
def test_corrupted_build_fails_with_a_one_screen_summary(built_sample, capsys):
    good = built_sample / "data" / "build"
    bad = built_sample / "data" / "corrupted"
    shutil.copytree(good, bad)
    questions = pd.read_parquet(bad / "questions.parquet")
    questions.loc[1, "qkey"] = questions.loc[0, "qkey"]  # duplicated key
    questions.loc[2, "question"] = "Hovv ofteu dc yuo gct ncws frcm sccial mcdia ~|~ ¬¬"  # OCR garble
    questions.at[3, "options"] = np.array(["Often", "nan", "Rarely", "Never"], dtype=object)
    llm = {"questionnaire": {"correction_backend": "openai", "cache_key": "ab" * 32, "topline_ok": False,
                             "topline_detail": "off by 7.0 points"}}
    questions["provenance"] = None
    questions.loc[4, "provenance"] = json.dumps(llm)  # LLM-corrected, no cache entry, topline far off
    questions.to_parquet(bad / "questions.parquet")
    dists = pd.read_parquet(bad / "distributions.parquet")
    dists.at[5, "probs"] = np.asarray(dists.at[5, "probs"]) * 1.1  # no longer sums to 1
    dists.to_parquet(bad / "distributions.parquet")

    rc, printed, summary = _validate(built_sample, bad, capsys)
    assert rc == 1
    lines = printed.splitlines()
    assert lines[0].startswith("validation FAILED") and len(lines) <= 45
    failed = {(f["suite"], f["column"]) for f in summary["failed"]}
    assert {("questions", "qkey"), ("questions", "word_share"), ("questions", "debris_share"),
            ("questions", "options_no_nan"), ("distributions", "probs_sum_error"),
            ("provenance", "llm_cache_entry"), ("provenance", "topline_max_diff")} <= failed
    assert "FAIL questions: expect_column_values_to_be_unique(qkey)" in printed
    assert f"qkey='{questions.loc[2, 'qkey']}'" in printed  # the failing row is named
    assert f"qkey='{dists.loc[5, 'qkey']}'" in printed


@pytest.mark.integration
@pytest.mark.slow
def test_real_waves_pass_or_are_counted_exclusions(atp_dir, tmp_path, capsys):
    """W48.5 has a veterans sample weighted apart (no Overall cell under the wave weight)."""
    params = {"data": {"waves_dir": str(atp_dir), "waves": ["W8", "W48.5", "W54"], "survey_details": None},
              "build": {"workers": 2, "out_dir": str(tmp_path / "data" / "build")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "params.yaml"), "build"]) == 0
    rc, printed, summary = _validate(tmp_path, tmp_path / "data" / "build", capsys)
    assert rc == 0, printed
    assert summary["questions_excluded"] > 0
    assert sum(summary["questions_excluded_by_reason"].values()) == summary["questions_excluded"]
    assert summary["questions_validated"] + summary["questions_excluded"] == summary["questions_built"]


def _predictions(questions: pd.DataFrame, method: str, failed_every: int = 0) -> pd.DataFrame:
    rows = []
    for i, q in enumerate(questions.itertuples()):
        k = len(q.options)
        failed = bool(failed_every) and i % failed_every == 0
        rows.append({"qkey": q.qkey, "attribute": "Overall", "group": "Overall",
                     "probs": [] if failed else [1.0 / k] * k, "out_of_option_mass": float("nan"),
                     "raw_reply": "not json" if failed else "{}", "failed": failed,
                     "error": "reply is not the schema" if failed else None, "template_hash": "t",
                     "model_id": "m", "model_revision": "r", "method": method, "steering": "none", "dataset": "d"})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_predictions_validation_reports_the_verbalized_failure_rate(built_sample, capsys):
    rc, printed, _ = _validate(built_sample, built_sample / "data" / "build", capsys)  # the validated dataset
    assert rc == 0, printed
    root = built_sample
    params = yaml.safe_load((root / "params_build.yaml").read_text())
    questions = pd.read_parquet(Path(params["validate"]["out_dir"]) / "dataset" / "questions.parquet")
    preds = root / "data" / "predictions"
    ok = _predictions(questions, "logprobs")
    (preds / "d" / "m" / "logprobs").mkdir(parents=True)
    ok.to_parquet(preds / "d" / "m" / "logprobs" / "none.parquet")
    flaky = _predictions(questions, "verbalized", failed_every=2)  # 50 %... above a 0.25 limit
    flaky.at[1, "probs"] = [0.9, 0.9] + [0.0] * (len(flaky.at[1, "probs"]) - 2)  # does not sum to 1
    (preds / "d" / "m" / "verbalized").mkdir(parents=True)
    flaky.to_parquet(preds / "d" / "m" / "verbalized" / "none.parquet")
    # an earlier experiment's model, no longer in infer.run: every row failed, and it is left out
    (preds / "d" / "dead" / "logprobs").mkdir(parents=True)
    _predictions(questions, "logprobs", failed_every=1).to_parquet(preds / "d" / "dead" / "logprobs" / "none.parquet")
    params["validate"] |= {"predictions_dir": str(preds), "max_verbalized_failure_rate": 0.25, "max_failure_rate": 0.6}
    params["infer"] = {"dataset": "d", "run": ["m"], "methods": ["logprobs", "verbalized"], "steerings": ["none"],
                       "baselines": []}
    (root / "params_pred.yaml").write_text(yaml.safe_dump(params))
    capsys.readouterr()
    assert main(["--params", str(root / "params_pred.yaml"), "validate-predictions"]) == 1
    printed = capsys.readouterr().out
    summary = json.loads((Path(params["validate"]["out_dir"]) / "predictions" / "summary.json").read_text())
    failed = {(f["suite"], f["column"]) for f in summary["failed"]}
    assert failed == {("prediction_files", "verbalized_failure_rate"), ("predictions", "probs_sum_error")}
    assert summary["verbalized_failure_rate"] == 0.5 and summary["prediction_files"] == 2
    assert summary["stale_prediction_files"] == ["d/dead/logprobs/none.parquet"]
    assert ("not declared by params (infer.run × infer.methods × infer.steerings, infer.baselines), left out as "
            f"stale: {preds / 'd' / 'dead' / 'logprobs' / 'none.parquet'}") in printed
    assert "verbalized parse failure rate: 50.0%" in printed
    assert f"qkey='{flaky.at[1, 'qkey']}'" in printed


@pytest.mark.slow
def test_a_predictions_file_of_any_method_failing_too_often_fails_validation_naming_it(built_sample, capsys):
    rc, printed, _ = _validate(built_sample, built_sample / "data" / "build", capsys)
    assert rc == 0, printed
    params = yaml.safe_load((built_sample / "params_build.yaml").read_text())
    questions = pd.read_parquet(Path(params["validate"]["out_dir"]) / "dataset" / "questions.parquet")
    preds = built_sample / "data" / "predictions_any"
    (preds / "d" / "m" / "logprobs").mkdir(parents=True)
    _predictions(questions, "logprobs", failed_every=1).to_parquet(preds / "d" / "m" / "logprobs" / "none.parquet")
    params["validate"] |= {"predictions_dir": str(preds), "max_failure_rate": 0.5}
    params["infer"] = {"dataset": "d", "run": ["m"], "methods": ["logprobs"], "steerings": ["none"], "baselines": []}
    (built_sample / "params_any.yaml").write_text(yaml.safe_dump(params))
    capsys.readouterr()
    assert main(["--params", str(built_sample / "params_any.yaml"), "validate-predictions"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL prediction_files: expect_column_values_to_be_between(failure_rate)" in printed
    assert "file='d/m/logprobs/none.parquet'" in printed
