"""Importers of the other benchmarks: hand-made miniature releases, then the real one (../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opinionbench.cli import main
from opinionbench.datasets import DatasetImportError, import_dataset
from opinionbench.datasets.opinionqa import rejoin_split_options
from opinionbench.tables import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS

OQA = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_{}"


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


@pytest.fixture()
def release(tmp_path) -> Path:
    """A miniature distributional-alignment release with the real files' quirks."""
    root = tmp_path / "release"
    options = ["A top priority", "Important", "but lower priority", "Not too important", "Refused"]  # split label
    answers = {"Democrat": {"A top priority": 60, "Important, but lower priority": 30, "Not too important": 10, "Refused": 5},
               "Republican": {"A top priority": 10, "Important, but lower priority": 30, "Not too important": 60},
               "Refused": {"A top priority": 1, "Refused": 2}}
    quoted = ['"Mostly helps"', '"Mostly hurts"', "Refused"]
    q2 = {"Democrat": {"Mostly helps": 3, "Mostly hurts": 1}, "Republican": {"Mostly helps": 1, "Mostly hurts": 3}}
    sex = {"Male": {"A top priority": 20, "Important, but lower priority": 30, "Not too important": 50},
           "Female": {"A top priority": 50, "Important, but lower priority": 30, "Not too important": 20}}
    race = {"White": {"A top priority": 1, "Not too important": 1}}
    for size in (100, 500):
        d = root / OQA.format(size)
        for attribute, groups1, groups2 in (("POLPARTY", answers, q2), ("SEX", sex, {"Male": {"Mostly helps": 1}}),
                                            ("RACE", race, {"White": {"Mostly hurts": 1}})):
            _write(d / f"{attribute}_data.json", {
                "PRIO_W54": {"MC_options": options, "question_text": "How much priority?", **groups1},
                "HELP_W36": {"MC_options": quoted, "question_text": "Does it help?", **groups2}})
        _write(d / "question_similarity_top10.json", {"PRIO_W54": ["HELP_W36", "NOT_IN_SET_W1"], "HELP_W36": ["PRIO_W54"]})
    pd.DataFrame({"key": ["PRIO_W54"], "question": ["How much priority?"],
                  "references": [str(["A top priority", "Important, but lower priority", "Not too important", "Refused"])],
                  "option_ordinal": ["[1.0, 2.0, 3.5]"], "survey": ["Pew_American_Trends_Panel_W54"]}
                 ).to_csv(root / OQA.format(500) / "info.csv")
    _write(root / "nytimes/data.json", {"A Book By Someone": {
        "MC_options": ["1: Very unlikely", "2: Somewhat unlikely", "3: Somewhat likely", "4: Very likely"],
        "genre": "Fiction", "summary": "A summary.",
        "Democrat": {"1: Very unlikely": 1, "2: Somewhat unlikely": 1, "3: Somewhat likely": 2, "4: Very likely": 0},
        "Republican": {"1: Very unlikely": 3, "2: Somewhat unlikely": 1, "3: Somewhat likely": 0, "4: Very likely": 0},
        "Male": {"1: Very unlikely": 2, "2: Somewhat unlikely": 2, "3: Somewhat likely": 0, "4: Very likely": 0},
        "Female": {"1: Very unlikely": 2, "2: Somewhat unlikely": 0, "3: Somewhat likely": 2, "4: Very likely": 0}}})
    _write(root / "Global_Values/data/data.json", {"Is it good?": {
        "MC_options": "['Good', 'Bad', 'DK/Refused']", "countries": ["Japan", "Chile"],
        "Japan": [0.6, 0.2, 0.2], "Chile": [0.25, 0.75, 0.0]}})
    _write(root / "results/human_annotations/OQA_human_tv_data.json", {"nosteer": [0.2, 0.4], "persona": [0.1], "fewshot": [0.3]})
    return root


def test_opinionqa_subset_counts_become_distributions(release):
    ds = import_dataset("opinionqa_500", release)
    assert list(ds.questions.columns[: len(QUESTION_COLUMNS)]) == QUESTION_COLUMNS
    assert list(ds.distributions.columns) == DISTRIBUTION_COLUMNS
    q = ds.questions.set_index("qkey")
    # The comma-split label is whole again (from info.csv), Refused is kept apart, the ordinal is the release's.
    assert list(q.loc["PRIO_W54", "options"]) == ["A top priority", "Important, but lower priority", "Not too important"]
    assert list(q.loc["PRIO_W54", "refusal_options"]) == ["Refused"]
    assert list(q.loc["PRIO_W54", "ordinal"]) == [1.0, 2.0, 3.5]
    assert q.loc["PRIO_W54", "wave"] == "W54" and list(q.loc["PRIO_W54", "similar_qkeys"]) == ["HELP_W36"]
    assert list(q.loc["HELP_W36", "options"]) == ["Mostly helps", "Mostly hurts"]  # quotes stripped
    d = ds.distributions.set_index(["qkey", "attribute", "group"])
    np.testing.assert_allclose(d.loc[("PRIO_W54", "POLPARTY", "Democrat"), "probs"], [0.6, 0.3, 0.1])
    assert d.loc[("PRIO_W54", "POLPARTY", "Democrat"), "refusal_rate"] == pytest.approx(5 / 105)
    # Overall sums every POLPARTY group, including the "Refused" one, which is not a group itself.
    np.testing.assert_allclose(d.loc[("PRIO_W54", "Overall", "Overall"), "probs"], np.array([71, 60, 70]) / 201)
    assert ("PRIO_W54", "POLPARTY", "Refused") not in d.index
    assert ds.human_annotations["steering"].tolist() == ["none", "none", "persona", "few-shot"]


def test_nytimes_and_global_values(release):
    nyt = import_dataset("nytimes", release)
    q = nyt.questions.iloc[0]
    assert q["qkey"].startswith("NYT_A_Book_By_Someone_") and "Book Summary: A summary." in q["question"]
    assert list(q["ordinal"]) == [1.0, 2.0, 3.0, 4.0]
    d = nyt.distributions.set_index(["attribute", "group"])
    np.testing.assert_allclose(d.loc[("Overall", "Overall"), "probs"], [0.5, 0.25, 0.25, 0.0])
    assert set(nyt.distributions["attribute"]) == {"Overall", "POLPARTY", "SEX"}
    gv = import_dataset("global_values", release)
    g = gv.distributions.set_index("group")
    assert set(gv.distributions["attribute"]) == {"COUNTRY"}  # no Overall across countries
    np.testing.assert_allclose(g.loc["Japan", "probs"], [0.75, 0.25])
    assert g.loc["Japan", "refusal_rate"] == pytest.approx(0.2)
    assert list(gv.questions.iloc[0]["refusal_options"]) == ["DK/Refused"]


def test_rejoin_split_options():
    assert rejoin_split_options(["Yes", "but rarely", "No"], {"Yes, but rarely", "No"}) == ["Yes, but rarely", "No"]
    assert rejoin_split_options(["Yes", "No"], {"Yes", "No"}) == ["Yes", "No"]


def test_broken_file_is_named(release):
    (release / "nytimes/data.json").write_text("{not json")
    with pytest.raises(DatasetImportError, match=r"nytimes/data.json: not valid JSON"):
        import_dataset("nytimes", release)


def test_import_stage_null_imports_nothing_and_isolates_bad_datasets(release, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("datasets:\n  distributional_alignment: null\n")
    assert main(["import-datasets"]) == 0
    assert sorted(p.name for p in Path("data/datasets").iterdir()) == ["import_report.json"]
    (release / "nytimes/data.json").write_text("[]")
    Path("params.yaml").write_text(f"datasets:\n  distributional_alignment: {release}\n  include: [nytimes, global_values]\n")
    assert main(["import-datasets"]) == 0
    report = json.loads(Path("data/datasets/import_report.json").read_text())
    assert list(report["imported"]) == ["global_values"] and "nytimes" in report["failed"]
    assert "dataset not imported: nytimes" in capsys.readouterr().out
    Path("params.yaml").write_text("datasets:\n  distributional_alignment: /nowhere\n")
    assert main(["import-datasets"]) == 2
    assert "datasets.distributional_alignment" in capsys.readouterr().err


@pytest.mark.integration
def test_real_release_imports(shared_dir):
    root = shared_dir / "data" / "distributional_alignment"
    if not root.is_dir():
        pytest.skip(f"distributional-alignment release not available at {root}")
    sizes = {"opinionqa_100": 100, "opinionqa_500": 494, "nytimes": 235, "global_values": 100}
    for name, n in sizes.items():
        ds = import_dataset(name, root)
        assert len(ds.questions) == n
        sums = ds.distributions["probs"].map(sum)
        assert np.allclose(sums, 1.0)
        assert (ds.questions["ordinal"].map(len) == ds.questions["options"].map(len)).all()
    oqa = import_dataset("opinionqa_100", root).distributions.set_index(["qkey", "attribute", "group"])
    # GAP21Q33_g_W82, Democrats: Top 60, Some 239, No priority 128 (weighted totals in POLPARTY_data.json).
    np.testing.assert_allclose(oqa.loc[("GAP21Q33_g_W82", "POLPARTY", "Democrat"), "probs"], np.array([60, 239, 128]) / 427)
    assert len(import_dataset("nytimes", root).human_annotations) == 3 * 940


@pytest.mark.integration
def test_real_release_through_import_and_evaluate(shared_dir, tmp_path, monkeypatch):
    """The real release → `opinionbench import-datasets` → baseline predictions → `opinionbench evaluate`:
    leaderboards carry the human annotators' rows (the release's own TVs) beside the baselines."""
    from opinionbench.inference.predictions import prediction_path, write_predictions
    from opinionbench.inference.baselines import baseline_predictions
    from opinionbench.inference.cells import cells_to_predict
    from opinionbench.tables import read_dataset

    root = shared_dir / "data" / "distributional_alignment"
    if not root.is_dir():
        pytest.skip(f"distributional-alignment release not available at {root}")
    monkeypatch.chdir(tmp_path)
    def params(dataset: str) -> str:  # evaluate scores what params declare: here the uniform baseline of `dataset`
        return (f"datasets:\n  distributional_alignment: {root}\n  include: [opinionqa_100, nytimes]\n"
                f"infer:\n  dataset: {dataset}\n  run: []\n  baselines: [uniform]\n"
                "evaluate:\n  bootstrap: 50\ntracking:\n  enabled: false\n")

    Path("params.yaml").write_text(params("opinionqa_100"))
    assert main(["import-datasets"]) == 0
    for name in ("opinionqa_100", "nytimes"):
        questions, distributions = read_dataset(Path("data/datasets") / name)
        cells = cells_to_predict(distributions, list(questions["qkey"]), None)
        frame = baseline_predictions("uniform", questions, distributions, cells, name)
        write_predictions(frame, prediction_path(name, "uniform", "baseline", "none", Path("data/predictions")))

    for name, prefix, n_questions in (("opinionqa_100", "OQA", 100), ("nytimes", "NYT", 235)):
        Path("params.yaml").write_text(params(name))
        assert main(["evaluate"]) == 0
        board = pd.read_csv(Path("data/reports/leaderboards") / f"{name}.csv").set_index("entry")
        assert board.loc["uniform · baseline · none", "n_questions"] == n_questions
        assert board.loc["overall-prior · baseline · none", "rep_overall"] == pytest.approx(1.0)  # computed here
        released = json.loads((root / "results/human_annotations" / f"{prefix}_human_tv_data.json").read_text())
        for condition, steering in (("nosteer", "none"), ("persona", "persona"), ("fewshot", "few-shot")):
            row = board.loc[f"human annotators · verbalized · {steering}"]
            assert row["tv_groups"] == pytest.approx(np.mean(released[condition]))
            assert row["tv_groups_lo"] < row["tv_groups"] < row["tv_groups_hi"]
        # Uniform is far from contentious opinions: worse than the groups' own distributions.
        assert board.loc["uniform · baseline · none", "rep_groups"] < board.loc["humans: other groups (avg)", "rep_groups"]
