"""Integration with the real Pew waves in ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import json

import numpy as np
import pyreadstat
import pytest

from opinionbench.survey import distributions, load_wave

pytestmark = pytest.mark.integration


def test_sportpol_w54_overall_equals_weighted_shares_from_the_file(atp_dir):
    wave = load_wave(atp_dir / "W54.sav")
    q = wave.questions.set_index("qkey").loc["SPORTPOL_W54"]
    raw, meta = pyreadstat.read_sav(str(atp_dir / "W54.sav"), usecols=["SPORTPOL_W54", "WEIGHT_W54"])
    labels = meta.variable_value_labels["SPORTPOL_W54"]
    substantive = [c for c, t in sorted(labels.items()) if t.strip() != "Refused"]
    assert list(q["options"]) == [labels[c].strip() for c in substantive]
    sel = raw["SPORTPOL_W54"].isin(substantive)
    totals = raw[sel].groupby("SPORTPOL_W54")["WEIGHT_W54"].sum().reindex(substantive)
    expected = (totals / totals.sum()).to_numpy()
    dist = distributions(wave)
    row = dist[(dist.qkey == "SPORTPOL_W54") & (dist.attribute == "Overall")].iloc[0]
    assert np.allclose(row["probs"], expected, atol=1e-12)
    refused = raw["SPORTPOL_W54"] == 99
    assert row["refusal_rate"] == pytest.approx(
        raw.loc[refused, "WEIGHT_W54"].sum() / raw.loc[sel | refused, "WEIGHT_W54"].sum()
    )
    assert row["n"] == int(sel.sum())


def test_group_counts_match_the_published_distributional_alignment_data(shared_dir):
    """POLPARTY and SEX cell sizes equal the per-group answer counts published with OpinionQA."""
    base = shared_dir / "data/distributional_alignment/opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_100"
    atp = shared_dir / "data/atp"
    checked = 0
    for attribute in ("POLPARTY", "SEX"):
        published = json.loads((base / f"{attribute}_data.json").read_text())
        for qkey in list(published)[:3]:
            wave = load_wave(atp / f"{qkey.rsplit('_', 1)[1]}.sav")
            dist = distributions(wave)
            options = set(wave.questions.set_index("qkey").loc[qkey, "options"])
            for group, counts in published[qkey].items():
                if group not in ("Republican", "Democrat", "Independent", "Other", "Male", "Female"):
                    continue
                row = dist[(dist.qkey == qkey) & (dist.attribute == attribute) & (dist.group == group)].iloc[0]
                assert row["n"] == sum(v for k, v in counts.items() if k in options), (qkey, group)
                checked += 1
    assert checked >= 15


def test_a_reason_that_begins_like_dont_know_is_an_answer(atp_dir):
    """PWMAN2_W49: "Don't know what that is" is the second reason Democrats give; not a refusal."""
    questions = load_wave(atp_dir / "W49.sav").questions.set_index("qkey")
    assert "Don’t know what that is" in list(questions.loc["PWMAN2_W49", "options"])
    assert list(questions.loc["PWMAN2_W49", "refusal_options"]) == ["Refused"]


def test_ordinal_of_a_neither_scale_matches_opinionqa(atp_dir):
    wave = load_wave(atp_dir / "W54.sav")
    assert list(wave.questions.set_index("qkey").loc["ECON5_d_W54", "ordinal"]) == [1.0, 2.0, 3.0, 4.0, 2.5]


@pytest.mark.slow
def test_all_waves_build_or_are_reported(atp_dir, capsys):
    from opinionbench.survey.build import build_waves

    files = sorted(atp_dir.glob("W*.sav"))
    result = build_waves(files, workers=2)
    report = result.report()
    assert report["waves_built"] + len(report["waves_failed"]) == len(files) == 118
    assert report["waves_failed"] == {"W8.5.sav": f"{atp_dir / 'W8.5.sav'}: no weight column (expected WEIGHT_W8.5)"}
    assert report["questions"] > 10000 and report["cells"] > 500000
    # every question that is built has an Overall distribution (unweighted-only items are skipped)
    dists = result.distributions
    assert set(dists.loc[dists["attribute"] == "Overall", "qkey"]) == set(result.questions["qkey"])
    assert "no substantive answer with a positive W48.5 weight" in report["skipped_columns"]["W48.5"].values()
    with capsys.disabled():
        print(f"\n[all waves] built {report['waves_built']}/118 waves: {report['questions']} questions, "
              f"{report['cells']} (question, group) cells; failed: {report['waves_failed']}")
