"""Params mistakes caught where DVC cannot see them: the `check-params` stage, first of the pipeline,
validates the whole params.yaml on every `dvc repro` and stops the run with the project's one-line
error naming the key.

Why real DVC in a throwaway copy: the defect was DVC's (a stage declares exact keys, so a typo'd
one is never read and `dvc repro` ran nothing); only DVC's own graph shows it is fixed. Each run
stops at the first stage, so these take seconds, not a pipeline run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_pipeline import REPO, _env, _project_files

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("params-copy")
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True)
    return root


def _repro(root: Path, params: dict) -> subprocess.CompletedProcess:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=_env(), capture_output=True,
                              text=True, timeout=600)
    finally:
        subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=root, check=True)


def _stopped_at_check_params(result: subprocess.CompletedProcess, error: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert f"error: {error}" in out.splitlines(), out[-3000:]
    assert "Running stage 'check-params'" in out and out.count("Running stage") == 1, out[-3000:]
    assert "Traceback" not in out


def _params(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def test_a_typo_beside_the_real_key_stops_dvc_repro_naming_it(copy):
    params = _params(copy)
    params["infer"]["k_shot"] = 5  # beside k_shots: no stage declares it, so DVC alone never reads it
    _stopped_at_check_params(_repro(copy, params),
                             "params.yaml: infer.k_shot: unknown key (did you mean infer.k_shots?)")


def test_a_dotted_model_name_stops_dvc_repro_with_the_projects_error_not_dvcs(copy):
    params = _params(copy)
    params["models"]["qwen2.5"] = {"backend": "hf", "model": "Qwen/Qwen2.5-0.5B-Instruct"}
    params["infer"]["run"] = [*params["infer"]["run"], "qwen2.5"]  # DVC would read `models.qwen2.5` as models→qwen2→5
    _stopped_at_check_params(_repro(copy, params), "params.yaml: models.qwen2.5: a model name may not contain '.' "
                                                   "(DVC splits param paths on dots); use e.g. qwen2_5")


def test_a_wrong_type_and_a_model_run_without_an_entry_stop_it_too(copy):
    params = _params(copy)
    params["validate"]["max_failure_rate"] = "half"
    result = _repro(copy, params)
    assert result.returncode != 0 and "error: params.yaml: validate.max_failure_rate: Input should be a valid number" \
        in result.stdout + result.stderr
    params = _params(copy)
    params["infer"]["run"] = ["nope"]
    _stopped_at_check_params(_repro(copy, params), "params.yaml: models.nope: no such model (known: "
                                                   f"{', '.join(_params(copy)['models'])})")


def test_its_output_is_the_same_for_every_valid_params_file(copy, tmp_path):
    """So a valid edit reruns only the stages that read the edited key, never the whole pipeline."""
    outs = []
    for k_shots in (3, 5):
        params = _params(copy)
        params["infer"]["k_shots"] = k_shots
        path = tmp_path / f"params-{k_shots}.yaml"
        path.write_text(yaml.safe_dump(params))
        out = tmp_path / f"checked-{k_shots}.json"
        result = subprocess.run([sys.executable, "-m", "opinionbench.cli", "--params", str(path), "check-params",
                                 "--out", str(out)], cwd=copy, env={**os.environ, **_env()}, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_every_stage_depends_on_check_params():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, spec in stages.items():
        if name != "check-params":
            deps = (spec.get("do") or spec).get("deps") or []
            assert "data/params_checked.json" in deps, name
