"""Bad survey files and bad params: one clear line naming the file or key, and the rest still works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
import yaml

from opinionbench.cli import main
from opinionbench.config import BuildParams, ValidateParams, load_section
from opinionbench.errors import ConfigError

from reliability_helpers import assert_one_line_error, run_cli

pytestmark = pytest.mark.reliability


def _rewrite_sav(src: Path, dst: Path, change) -> None:
    frame, meta = pyreadstat.read_sav(str(src))
    frame, labels = change(frame, dict(meta.variable_value_labels))
    pyreadstat.write_sav(frame, str(dst), column_labels={c: meta.column_names_to_labels.get(c) for c in frame.columns},
                         variable_value_labels={c: v for c, v in labels.items() if c in frame.columns})


def _no_weights(frame: pd.DataFrame, labels):
    return frame.drop(columns=[c for c in frame.columns if c.upper().startswith("WEIGHT")]), labels


def _unknown_code(frame: pd.DataFrame, labels):
    column = next(c for c in frame.columns if c.startswith("F_PARTY") or c.startswith("F_SEX"))
    frame = frame.copy()
    frame.loc[frame.index[:5], column] = 77.0  # a code with no value label
    return frame, labels


BAD_WAVES = {
    "truncated": ("not a readable SPSS .sav file", lambda src, dst: dst.write_bytes(src.read_bytes()[:4096])),
    "empty": ("not a readable SPSS .sav file", lambda src, dst: dst.write_bytes(b"")),
    "not_a_sav": ("not a readable SPSS .sav file", lambda src, dst: dst.write_text("qkey,answer\n1,2\n")),
    "no_weights": ("no weight column", lambda src, dst: _rewrite_sav(src, dst, _no_weights)),
    "unknown_code": ("unknown demographic code 77", lambda src, dst: _rewrite_sav(src, dst, _unknown_code)),
}


@pytest.mark.parametrize("kind", sorted(BAD_WAVES))
def test_a_bad_wave_is_one_line_and_the_good_wave_still_builds(kind, tmp_path, sample_sav, capsys, tally):
    tally.bad_input(f".sav {kind}")
    needle, make = BAD_WAVES[kind]
    waves = tmp_path / "waves"
    waves.mkdir()
    shutil.copy(sample_sav, waves / "W900.sav")
    make(sample_sav, waves / "W901.sav")
    params = {"data": {"waves_dir": str(waves)}, "build": {"workers": 1, "out_dir": str(tmp_path / "data" / "build")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "params.yaml"), "build"]) == 0
    out = capsys.readouterr()
    bad = [l for l in out.out.splitlines() if l.startswith("wave not built")]
    assert len(bad) == 1 and "W901.sav" in bad[0] and needle in bad[0], out.out
    assert "built 1/2 waves: 12 questions" in out.out and "Traceback" not in out.err
    assert len(pd.read_parquet(tmp_path / "data" / "build" / "questions.parquet")) == 12


def test_only_bad_waves_is_an_error_exit_without_traceback(tmp_path, sample_sav, tally):
    tally.bad_input("only a truncated .sav")
    waves = tmp_path / "waves"
    waves.mkdir()
    (waves / "W901.sav").write_bytes(sample_sav.read_bytes()[:2048])
    params = {"data": {"waves_dir": str(waves)}, "build": {"workers": 1, "out_dir": str(tmp_path / "data" / "build")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_cli(["--params", str(tmp_path / "params.yaml"), "build"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "W901.sav: not a readable SPSS .sav file" in result.stdout


BAD_PARAMS = {
    "wrong type": ({"build": {"workers": "two"}}, "build.workers"),
    "unknown key": ({"build": {"wrokers": 2}}, "build.wrokers"),
    "unknown section": ({"bulid": {"workers": 2}}, "bulid: unknown section"),
    "out of range": ({"build": {"workers": 0}}, "build.workers"),
    "escape with ..": ({"build": {"out_dir": "data/../../outside"}}, "build.out_dir: Value error, path 'data/../../outside' is outside the data directory"),
    "absolute escape": ({"build": {"out_dir": "/etc/opinionbench"}}, "build.out_dir"),
    "validate out_dir escape": ({"validate": {"out_dir": "../validation"}}, "validate.out_dir"),
    "validate threshold type": ({"validate": {"min_word_share": "most"}}, "validate.min_word_share"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_params_name_the_key_in_one_line(case, tmp_path, sample_sav, capsys, tally):
    tally.bad_input(f"params {case}")
    override, needle = BAD_PARAMS[case]
    params = {"data": {"waves_dir": str(sample_sav.parent)}, "build": {"workers": 1}} 
    for section, values in override.items():
        params[section] = {**params.get(section, {}), **values}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = "validate" if "validate" in override else "build"
    assert main(["--params", str(tmp_path / "params.yaml"), command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert needle in err


def test_params_file_that_is_not_yaml(tmp_path, capsys, tally):
    tally.bad_input("params not YAML")
    (tmp_path / "params.yaml").write_text("build: [workers: 2\n  out_dir: {")
    assert main(["--params", str(tmp_path / "params.yaml"), "build"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not valid YAML" in err and len(err.splitlines()) == 1


def test_path_guard_accepts_the_data_directory_and_rejects_escapes(tmp_path, monkeypatch, tally):
    tally.security("params paths cannot escape data/")
    monkeypatch.chdir(tmp_path)
    assert BuildParams.model_validate({"out_dir": "data/build"}).out_dir == Path("data/build")
    assert ValidateParams.model_validate({"out_dir": str(tmp_path / "data" / "v")}).out_dir == tmp_path / "data" / "v"
    for escape in ["data/../../x", "../data/build", "/tmp", "data2/build", str(tmp_path / "database")]:
        with pytest.raises(ValueError, match="outside the data directory"):
            BuildParams.model_validate({"out_dir": escape})
    # a params file elsewhere: its own data/ directory is the project's
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "params.yaml").write_text(yaml.safe_dump({"build": {"out_dir": str(other / "data" / "build")}}))
    assert load_section("build", other / "params.yaml").out_dir == other / "data" / "build"
    (other / "params.yaml").write_text(yaml.safe_dump({"build": {"out_dir": str(other / "build")}}))
    with pytest.raises(ConfigError, match=r"build\.out_dir"):
        load_section("build", other / "params.yaml")


def _typo_column(text: str) -> str:
    suite = json.loads(text)
    suite["expectations"].append({"type": "expect_column_values_to_be_between",
                                  "kwargs": {"column": "no_such_column", "min_value": 0}})
    return json.dumps(suite)


def _unknown_type(text: str) -> str:
    suite = json.loads(text)
    suite["expectations"].append({"type": "expect_everything_to_be_fine", "kwargs": {}})
    return json.dumps(suite)


BAD_SUITES = {
    "not JSON": (lambda text: text[: len(text) // 2], 2, "questions.json: not valid JSON"),
    "unknown expectation": (_unknown_type, 2, "questions.json"),
    "column typo": (_typo_column, 1, "could not be evaluated"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_broken_expectation_suite_is_reported_naming_the_file_or_check(case, tmp_path, sample_sav, tally):
    tally.bad_input(f"expectation suite: {case}")
    corrupt, status, needle = BAD_SUITES[case]
    suites = tmp_path / "suites"
    shutil.copytree(Path(__file__).resolve().parents[2] / "expectations", suites)
    (suites / "questions.json").write_text(corrupt((suites / "questions.json").read_text()))
    build = {"workers": 1, "out_dir": str(tmp_path / "data" / "build")}
    params = {"data": {"waves_dir": str(sample_sav.parent)}, "build": build,
              "validate": {"build_dir": build["out_dir"], "suites_dir": str(suites),
                           "exclusions": str(suites / "exclusions.yaml"), "out_dir": str(tmp_path / "data" / "validation")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_cli(["--params", "params.yaml", "build"], cwd=tmp_path).returncode == 0
    result = run_cli(["--params", "params.yaml", "validate"], cwd=tmp_path)
    assert result.returncode == status, result.stdout + result.stderr
    if status == 2:
        assert_one_line_error(result, needle)
    else:
        assert "Traceback" not in result.stderr and needle in result.stdout
        assert "FAIL questions: expect_column_values_to_be_between(no_such_column)" in result.stdout
