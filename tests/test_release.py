"""The dataset release, read back by the field's own tools: Hugging Face `datasets` (offline),
`mlcroissant`, and OpinionQA's `human_resp` parsing rules (the project's reader of their files).

One release of the embedded sample is made for the module (a few seconds); the comparison with
OpinionQA's released files builds one real wave (W41, ~2 s) and skips without ../shared.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from opinionbench.datasets.opinionqa import SUBSET_DIR, import_opinionqa_subset
from opinionbench.release.build import release
from opinionbench.release.human_resp import export_human_resp
from opinionbench.release.schema import CONFIGS, ReleaseError, columns
from opinionbench.survey.build import build_waves
from opinionbench.tables import DISTRIBUTION_COLUMNS, OVERALL, QUESTION_COLUMNS

OPINIONQA_ATTRIBUTES = ["POLPARTY", "SEX", "RACE"]


@pytest.fixture(scope="module")
def sample_tables(sample_sav):
    built = build_waves([sample_sav], workers=1)
    return built.questions, built.distributions


@pytest.fixture(scope="module")
def released(sample_tables, tmp_path_factory):
    questions, distributions = sample_tables
    root = tmp_path_factory.mktemp("release")
    result = release(questions, distributions, root / "opinionqa_xl", name="opinionqa_xl", version="1.0.0",
                     date_published=datetime.date(2026, 12, 4),
                     validation={"questions_built": 12, "questions_validated": len(questions),
                                 "questions_excluded_by_reason": {}, "cells_dropped_low_n_eff": 0},
                     human_resp_dir=root / "human_resp")
    return result


def test_loads_with_datasets_offline(released, sample_tables, monkeypatch, tmp_path):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    questions, distributions = sample_tables
    cache = str(tmp_path / "hf-cache")  # not the user's ~/.cache/huggingface
    q = datasets.load_dataset(str(released.out_dir), "questions", split="test", cache_dir=cache)
    assert q.num_rows == len(questions)
    assert q.column_names == [c.name for c in columns("questions")]
    first = q[0]
    expected = questions.iloc[0]
    assert first["qkey"] == expected["qkey"] and first["options"] == list(expected["options"])
    d = datasets.load_dataset(str(released.out_dir), "distributions", split="test", cache_dir=cache).to_pandas()
    assert len(d) == len(distributions)
    merged = d.merge(distributions, on=["qkey", "attribute", "group"], suffixes=("", "_ours"))
    assert len(merged) == len(distributions)
    assert all(np.allclose(a, b) for a, b in zip(merged["probs"], merged["probs_ours"]))
    # the default configuration is `questions`
    assert datasets.load_dataset(str(released.out_dir), split="test", cache_dir=cache).column_names == q.column_names


def test_card_header_names_configs_features_sizes_and_license(released):
    text = (released.out_dir / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert [c["config_name"] for c in header["configs"]] == list(CONFIGS)
    for config, info in zip(CONFIGS, header["dataset_info"]):
        assert info["config_name"] == config
        assert [f["name"] for f in info["features"]] == [c.name for c in columns(config)]
        assert info["splits"][0]["num_examples"] == (12 if config == "questions" else released.cells)
        path = released.out_dir / header["configs"][CONFIGS.index(config)]["data_files"][0]["path"]
        assert info["download_size"] == path.stat().st_size
    assert header["license"] == "other" and "pewresearch.org" in header["license_link"]
    body = text.split("---\n", 2)[2]
    for section in ("## How it was built", "## License and terms of use", "## Citation", "Pew Research Center's terms"):
        assert section in body, section
    assert "@inproceedings{santurkar2023opinions" in body


def test_croissant_validates_and_reads_the_records(released):
    import mlcroissant as mlc

    path = released.out_dir / "croissant.json"
    meta = json.loads(path.read_text())
    assert meta["conformsTo"].startswith("http://mlcommons.org/croissant/")
    sha = {d["contentUrl"]: d["sha256"] for d in meta["distribution"]}
    for rel, digest in sha.items():
        import hashlib

        assert hashlib.sha256((released.out_dir / rel).read_bytes()).hexdigest() == digest
    dataset = mlc.Dataset(jsonld=str(path))
    assert not dataset.metadata.issues.errors and not dataset.metadata.issues.warnings
    records = list(dataset.records("questions"))
    assert len(records) == 12
    assert {r["questions/qkey"].decode() for r in records} >= {"ECONRATE_W900"}


def test_human_resp_export_reads_back_with_opinionqas_rules(released, sample_tables, tmp_path):
    """Laid out as the distributional-alignment release, our export parses with the same reader
    as their files (datasets/opinionqa.py) and gives back our distributions exactly."""
    questions, distributions = sample_tables
    survey = released.human_resp_dir / "Pew_American_Trends_Panel_W900"
    info = pd.read_csv(survey / "info.csv")
    assert list(info.columns) == ["key", "option_mapping", "question", "references", "option_ordinal", "survey"]
    assert {f"{a}_data.json" for a in OPINIONQA_ATTRIBUTES} <= {p.name for p in survey.iterdir()}
    parsed = _parse_as_opinionqa(survey, tmp_path)
    assert sorted(parsed.questions["qkey"]) == sorted(questions["qkey"])
    ours = distributions.set_index(["qkey", "attribute", "group"])
    theirs = parsed.distributions[parsed.distributions["attribute"] != OVERALL]
    assert len(theirs) == int(distributions["attribute"].isin(OPINIONQA_ATTRIBUTES).sum())
    for row in theirs.itertuples(index=False):
        mine = ours.loc[(row.qkey, row.attribute, row.group)]
        assert np.allclose(row.probs, mine["probs"], atol=1e-6), row.qkey
        assert row.refusal_rate == pytest.approx(mine["refusal_rate"], abs=1e-6)
        assert row.n == pytest.approx(mine["n"], rel=1e-6)
    by_key = parsed.questions.set_index("qkey")
    for q in questions.itertuples(index=False):
        assert list(by_key.loc[q.qkey, "options"]) == list(q.options)
        assert list(by_key.loc[q.qkey, "ordinal"]) == [float(v) for v in q.ordinal]


def _parse_as_opinionqa(survey_dir: Path, root: Path):
    """Our `<survey>/` directory placed where OpinionQA's reader looks, then read by it."""
    target = root / SUBSET_DIR.format(size=500)
    target.mkdir(parents=True)
    for f in survey_dir.iterdir():
        shutil.copy(f, target / f.name)
    (target / "question_similarity_top10.json").write_text("{}")
    return import_opinionqa_subset(root, 500)


@pytest.mark.integration
def test_our_export_matches_opinionqas_released_files(atp_dir, shared_dir, tmp_path):
    """W41 rebuilt and exported, next to OpinionQA's own files of the same questions (the 500-question
    subset): same keys, same options in the same order, distributions close. Not equal: ours are
    weighted with the survey weights, their files hold unweighted counts (audit/group_counts.py)."""
    release_dir = shared_dir / "data" / "distributional_alignment"
    if not (release_dir / SUBSET_DIR.format(size=500)).is_dir():
        pytest.skip(f"OpinionQA's human_resp files not at {release_dir}")
    built = build_waves([atp_dir / "W41.sav"], workers=1, answer_classes="opinionqa")
    export_human_resp(built.questions, built.distributions, tmp_path / "export", OPINIONQA_ATTRIBUTES)
    ours = _parse_as_opinionqa(tmp_path / "export" / "Pew_American_Trends_Panel_W41", tmp_path / "ours")
    theirs = import_opinionqa_subset(release_dir, 500)
    common = sorted(set(ours.questions["qkey"]) & set(theirs.questions["qkey"]))
    assert len(common) >= 40, common  # the subset holds 41 questions of W41
    oq, tq = ours.questions.set_index("qkey"), theirs.questions.set_index("qkey")
    od = ours.distributions.set_index(["qkey", "attribute", "group"])
    td = theirs.distributions.set_index(["qkey", "attribute", "group"])
    tvs = []
    for key in common:
        assert list(oq.loc[key, "options"]) == list(tq.loc[key, "options"]), key
        for group in ("Democrat", "Republican"):
            p, q = np.asarray(od.loc[(key, "POLPARTY", group), "probs"]), np.asarray(td.loc[(key, "POLPARTY", group), "probs"])
            tvs.append(0.5 * np.abs(p - q).sum())
    assert max(tvs) < 0.1 and np.mean(tvs) < 0.04, (max(tvs), np.mean(tvs))


def test_every_table_column_is_described():
    assert [c.name for c in columns("questions")] == QUESTION_COLUMNS
    assert [c.name for c in columns("distributions")] == DISTRIBUTION_COLUMNS
    assert all(c.description for config in CONFIGS for c in columns(config))


def test_a_dataset_without_a_released_column_is_one_line_naming_it(sample_tables, tmp_path):
    questions, distributions = sample_tables
    with pytest.raises(ReleaseError, match=r"questions: the dataset lacks columns \['topic'\]"):
        release(questions.drop(columns=["topic"]), distributions, tmp_path / "r", name="x", version="1.0.0",
                date_published=datetime.date(2026, 1, 1))
    assert not (tmp_path / "r").exists() and not list(tmp_path.glob(".r.*")), "a failed release leaves nothing"


def test_unknown_export_attribute_is_named(sample_tables, tmp_path):
    questions, distributions = sample_tables
    with pytest.raises(ReleaseError, match="release.attributes: \\['PARTY'\\] not in the dataset"):
        export_human_resp(questions, distributions, tmp_path, ["PARTY"])
