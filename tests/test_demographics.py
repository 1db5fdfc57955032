"""Label-based harmonisation: the same group whatever the wave's column name or code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opinionbench.errors import SurveyError
from opinionbench.survey.demographics import attribute_groups, harmonise, normalise_label


def by_name(attrs):
    return {a.name: a for a in attrs}


def test_columns_and_codes_differ_but_groups_agree():
    early = pd.DataFrame({"F_PARTY_TYPOLOGY": [1.0, 2.0, 5.0, 9.0]})
    early_labels = {"F_PARTY_TYPOLOGY": {1.0: "Republican", 2.0: "Democrat", 5.0: "(VOL) Other party",
                                         9.0: "(VOL) Don't know/Refused"}}
    late = pd.DataFrame({"F_PARTY_FINAL": [2.0, 1.0, 4.0, 99.0]})
    late_labels = {"F_PARTY_FINAL": {1.0: "Republican", 2.0: "Democrat", 4.0: "Something else", 99.0: "Refused"}}
    groups = attribute_groups()["POLPARTY"]
    a = by_name(harmonise("early.sav", early, early_labels))["POLPARTY"]
    b = by_name(harmonise("late.sav", late, late_labels))["POLPARTY"]
    assert [groups[i] if i >= 0 else None for i in a.codes] == ["Republican", "Democrat", "Other", None]
    assert [groups[i] if i >= 0 else None for i in b.codes] == ["Democrat", "Republican", "Other", None]


def test_curly_quotes_case_and_spacing_do_not_matter():
    assert normalise_label("  Associate’s   degree ") == "associate's degree"
    assert normalise_label("“Hispanic”") == "hispanic"
    frame = pd.DataFrame({"F_SEX": [1.0, 2.0]})
    sex = by_name(harmonise("w.sav", frame, {"F_SEX": {1.0: "male", 2.0: "female"}}))["SEX"]
    assert list(sex.codes) == [0, 1]


def test_hispanic_respondents_go_to_hispanic_whatever_their_race():
    frame = pd.DataFrame({"F_RACECMB": [1.0, 1.0, 2.0, 4.0], "F_HISP": [2.0, 1.0, 2.0, 2.0]})
    labels = {"F_RACECMB": {1.0: "White", 2.0: "Black or African-American", 4.0: "Mixed Race"},
              "F_HISP": {1.0: "Yes", 2.0: "No"}}
    race = by_name(harmonise("w.sav", frame, labels))["RACE"]
    groups = race.groups
    assert [groups[i] for i in race.codes] == ["White", "Hispanic", "Black", "Other"]


def test_unknown_demographic_label_names_file_column_and_code():
    frame = pd.DataFrame({"F_IDEO": [1.0, 7.0]})
    labels = {"F_IDEO": {1.0: "Very conservative", 7.0: "Libertarian"}}
    with pytest.raises(SurveyError, match=r"W77\.sav: unknown demographic code 7 \('Libertarian'\) in F_IDEO"):
        harmonise("W77.sav", frame, labels)


def test_code_without_value_label_is_an_unknown_code():
    frame = pd.DataFrame({"F_CREGION": [1.0, 8.0]})
    with pytest.raises(SurveyError, match=r"unknown demographic code 8 in F_CREGION"):
        harmonise("W5.sav", frame, {"F_CREGION": {1.0: "Northeast"}})


def test_attribute_missing_from_a_wave_is_omitted_not_invented():
    attrs = harmonise("w.sav", pd.DataFrame({"F_CREGION": [1.0]}), {"F_CREGION": {1.0: "Northeast"}})
    assert [a.name for a in attrs] == ["CREGION"]
    assert np.array_equal(attrs[0].codes, [0])
