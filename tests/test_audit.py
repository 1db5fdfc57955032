"""Audits of published datasets against the .sav microdata: a hand-made release over the sample
wave (every status, exact reasons), then the real OpinionQA-XL release and OpinionQA's per-group
counts over ../shared (skipped when it is absent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyreadstat
import pytest

from opinionbench.audit import audit_group_counts, audit_release
from opinionbench.audit.release import STATUSES, AuditError
from opinionbench.audit.sav import read_codebook


@pytest.fixture(scope="module")
def waves_dir(sample_sav: Path, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("waves")
    shutil.copy(sample_sav, directory / sample_sav.name)
    return directory


@pytest.fixture(scope="module")
def book(sample_sav: Path):
    return read_codebook(sample_sav)


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_every_kind_of_difference_is_named_with_its_reason(waves_dir, book, tmp_path):
    econ, gun, soc = book.questions["ECONRATE_W900"], book.questions["GUNLAWS_W900"], book.questions["SOCNEWS_W900"]
    climate = book.questions["CLIMATE_W900"]
    release = {
        "W900": {
            # same wording and options (their own order, plus Refused and a nan, as the real release has)
            "ECONRATE": {"question": econ.question + " [RANDOMIZE]", "options": list(reversed(econ.options)) + ["Refused", float("nan")]},
            # our label is a cut-off start of theirs
            "GUNLAWS": {"question": gun.question + " or kept as they are now, in your opinion about this", "options": gun.options},
            # their text names another item
            "SOCNEWS": {"question": "How often do you read a printed newspaper?", "options": soc.options},
            # an answer people gave is missing from their options
            "CLIMATE": {"question": climate.question, "options": climate.options[:-1] + ["Refused"]},
            "NOSUCH": {"question": "A question the wave does not have", "options": ["Yes", "No"]},
            "FORM": {"question": "Form", "options": ["1", "2"]},
        },
        "W901": {"ANY": {"question": "From a wave we do not have", "options": ["Yes", "No"]}},
    }
    table = audit_release(_write(tmp_path / "release.json", release), waves_dir, progress=False).set_index("qkey")
    assert len(table) == 7 and set(table["status"]) <= set(STATUSES)
    assert table.loc["ECONRATE_W900", "status"] == "matched" and table.loc["ECONRATE_W900", "reason"] == ""
    assert table.loc["GUNLAWS_W900", "status"] == "label_truncated"
    assert table.loc["SOCNEWS_W900", "status"] == "wording_differs"
    assert "not part of our label" in table.loc["SOCNEWS_W900", "reason"]
    assert table.loc["CLIMATE_W900", "status"] == "options_differ"
    assert "release lacks 'don't know' (" in table.loc["CLIMATE_W900", "reason"]
    assert table.loc["NOSUCH_W900", "status"] == "missing" and "no column NOSUCH_W900" in table.loc["NOSUCH_W900", "reason"]
    assert "not a closed question" in table.loc["FORM_W900", "reason"] and "admin variable" in table.loc["FORM_W900", "reason"]
    assert "wave W901 not available" in table.loc["ANY_W901", "reason"]
    assert (table.loc[table["status"] != "matched", "reason"].str.len() > 0).all()


def test_the_report_names_the_waves_and_columns_of_each_reason_and_never_prints_a_rounded_tie(waves_dir, book, tmp_path):
    from opinionbench.audit.report import write_audit

    release = {"W900": {"NOSUCH": {"question": "Not in the wave", "options": ["Yes", "No"]},
                        "FORM": {"question": "Form", "options": ["1", "2"]}},
               "W901": {q: {"question": "From a wave we do not have", "options": ["Yes", "No"]} for q in ("A", "B")}}
    table = audit_release(_write(tmp_path / "release.json", release), waves_dir, progress=False)
    write_audit(tmp_path / "out", table, None, (tmp_path / "release.json", None))
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"- 2 × wave not available (no .sav in {waves_dir}): W901" in report
    assert "- 1 × no such column in the wave's .sav: NOSUCH_W900" in report
    assert "not a closed question" in report and "FORM_W900" in report and "W*" not in report
    import re

    from opinionbench.audit.release import SIMILAR, compare

    soc = book.questions["SOCNEWS_W900"]
    other = compare("SOCNEWS_W900", "W900", "SOCNEWS", {"question": "How often do you read a printed newspaper?",
                                                        "options": soc.options}, soc, {})
    # with its decimal: 89.6 is not printed as "90 < 90"
    assert other["status"] == "wording_differs" and re.match(
        rf"wording similarity {other['wording_similarity']:.1f} < {SIMILAR:.0f}: ", other["reason"])


def test_a_release_that_is_not_the_schema_is_one_line_naming_the_item(waves_dir, tmp_path):
    bad = _write(tmp_path / "bad.json", {"W900": {"ECONRATE": {"question": "x"}}})
    with pytest.raises(AuditError, match=r"bad.json: W900/ECONRATE: expected an object with `question` and an `options` list"):
        audit_release(bad, waves_dir, progress=False)


def _counts_by_party(sav: Path, qkey: str) -> dict:
    """OpinionQA's per-group record, computed here independently of the audit (labels, not codes)."""
    frame, _ = pyreadstat.read_sav(str(sav), apply_value_formats=True, usecols=[qkey, "F_PARTY_FINAL"])
    record = {"MC_options": sorted(frame[qkey].dropna().unique().tolist()), "question_text": qkey}
    for party, answers in frame.dropna().groupby("F_PARTY_FINAL", observed=True)[qkey]:
        name = {"Something else": "Other"}.get(party, party)
        record[name] = {k: float(v) for k, v in answers.value_counts().items() if v}
    return record


def test_group_counts_match_and_a_lost_answer_is_found(sample_sav, waves_dir, tmp_path):
    record = _counts_by_party(sample_sav, "SOCNEWS_W900")
    lost = record["Democrat"].pop("Never")  # what a loader that reads a label as missing leaves
    directory = tmp_path / "human_resp" / "Pew_American_Trends_Panel_disagreement_100"
    directory.mkdir(parents=True)
    _write(directory / "POLPARTY_data.json", {"SOCNEWS_W900": record})
    table = audit_group_counts(tmp_path / "human_resp", waves_dir, progress=False).set_index("group")
    assert table.loc["Republican", "status"] == "matched"
    assert table.loc["Independent", "status"] == "matched"
    assert table.loc["Democrat", "status"] == "release_lost_answers"
    assert f"'never' ({int(lost)} respondents)" in table.loc["Democrat", "reason"]
    assert table.loc["Refused", "status"] == "not_compared"


# --- the real releases (../shared) ------------------------------------------------------------


@pytest.mark.integration
def test_every_opinionqa_xl_question_is_accounted_for(shared_dir, atp_dir):
    release = shared_dir / "data" / "opinionqa_xl" / "opinionqa-xl.json"
    table = audit_release(release, atp_dir, progress=False)
    assert len(table) == sum(len(v) for v in json.loads(release.read_text()).values()) == 5753
    assert table["qkey"].is_unique
    assert (table.loc[table["status"] != "matched", "reason"].str.len() > 0).all()
    assert (table["status"] == "missing").mean() <= 0.03
    by_key = table.set_index("qkey")
    assert by_key.loc["CONFVALUESa_W57", "reason"].startswith("wave W57 not available")
    assert by_key.loc["TRANSGEND10_W109", "status"] == "label_truncated"   # SPSS cut the label: "...that other"
    assert by_key.loc["WHYREDINEQd_W54", "status"] == "wording_differs"    # the label names another item
    assert by_key.loc["PWMAN2_W49", "status"] == "matched"


@pytest.mark.integration
def test_opinionqa_group_counts_agree_except_where_the_release_lost_answers(shared_dir, atp_dir):
    human = shared_dir / "data" / "distributional_alignment" / "opinions_qa" / "data" / "human_resp"
    table = audit_group_counts(human, atp_dir, progress=False)
    compared = table[table["attribute"].isin(["POLPARTY", "SEX"]) & (table["status"] != "not_compared")]
    assert len(compared) > 3000
    assert set(compared["status"]) == {"matched", "release_lost_answers"}
    lost = table[table["status"] == "release_lost_answers"]
    assert {"GROWUPGUN4_W26", "RACESURV40_W43"} <= set(lost["qkey"])
    assert lost["reason"].str.contains("'none'").all()
