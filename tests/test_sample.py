"""The committed sample wave is exactly what the deterministic generator writes."""

from __future__ import annotations

import pandas as pd
import pyreadstat

from opinionbench.sample import N_RESPONDENTS, QUESTIONS, generate_sample


def test_generator_reproduces_the_committed_sample(tmp_path, sample_sav):
    fresh = generate_sample(tmp_path)
    a, meta_a = pyreadstat.read_sav(str(fresh))
    b, meta_b = pyreadstat.read_sav(str(sample_sav))
    pd.testing.assert_frame_equal(a, b)
    assert meta_a.variable_value_labels == meta_b.variable_value_labels
    assert meta_a.column_names_to_labels == meta_b.column_names_to_labels
    assert len(a) == N_RESPONDENTS
    assert len(QUESTIONS) == 12
