"""Parallel experiments with `dvc queue`, for real: every queued experiment's MLflow runs are kept.

`dvc exp run --queue` + `dvc queue start -j 2` runs each experiment in a temporary copy of the
repository (`.dvc/tmp/exps/...`) that has no git-ignored files: no `mlflow.db`, no
`mlartifacts/`. With the default relative store (`sqlite:///mlflow.db`) the runs used to go to a
throwaway database deleted with the copy. This test queues two experiments in a throwaway clone
of the project, runs them two at a time, and reads the clone's own `mlflow.db`: both experiments'
runs are there (tagged `DVC_EXP_NAME`), with their artifacts in the clone's `mlartifacts/`.

Cheap on purpose (the property is about where runs go, not about models): no questionnaire OCR,
no language model (`infer.run: []`), the three baselines on 2 and 3 questions, 50 bootstrap
resamples. Measured on 2 cores: see the README section "Parallel experiments (dvc queue)".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = {"queued-n2": 2, "queued-n3": 3}  # name -> infer.questions.n: different predictions, different runs
TIMEOUT_S = 900

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]


def _git_files(*args: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=REPO, check=True, capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _project_files() -> list[str]:
    """What a clone holds: tracked files, plus new source files outside data/ (not run outputs)."""
    new = [f for f in _git_files("--others", "--exclude-standard") if not f.startswith("data/")]
    return sorted(set(_git_files("--cached")) | set(new))


def _env() -> dict[str, str]:
    """The user's environment with no tracking override: the default relative store is the case under test."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        env.pop(name, None)
    env.update(GX_ANALYTICS_ENABLED="false", MLFLOW_ENABLE_TELEMETRY="false", DVC_NO_ANALYTICS="1")
    return env


def _dvc(project: Path, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
                   cwd=project, check=True, capture_output=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh clone of the project with the cheapest end-to-end settings, its dataset built and committed."""
    root = tmp_path_factory.mktemp("queue") / "project"
    for rel in _project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["questionnaire"]["pdfs"] = {}  # no OCR: the build reads the .sav codebook alone
    params["questionnaire"]["reviews"] = None
    params["infer"]["run"] = []  # baselines only: no model weights to convert in each temporary workspace
    params["evaluate"]["bootstrap"] = 50
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "clone")
    # A researcher queues variations of a reproduced baseline: the dataset stages run once here, and the
    # queued experiments take their outputs from the shared DVC cache (they rerun inference onwards).
    _dvc(root, "repro", "neighbours", timeout=600)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "baseline: dataset built")
    return root


def _queue_states(project: Path) -> dict[str, str]:
    """Experiment name -> queue status (Queued, Running, Success, Failed) from `dvc queue status`."""
    states = {}
    for line in _dvc(project, "queue", "status").splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] in EXPERIMENTS:
            states[words[1]] = next((w for w in words[2:] if w in {"Queued", "Running", "Success", "Failed"}), "?")
    return states


def _experiment_refs(project: Path) -> set[str]:
    """Names of the finished experiments: each success is a git ref `refs/exps/<baseline>/<name>` (cheap to read)."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=project,
                         capture_output=True, text=True, check=True).stdout
    return {ref.rsplit("/", 1)[-1] for ref in out.split()} & set(EXPERIMENTS)


def _run_queue(project: Path) -> dict[str, str]:
    """Queue the experiments, run them two at a time, wait until none is queued or running."""
    for name, n in EXPERIMENTS.items():
        _dvc(project, "exp", "run", "--queue", "-n", name, "-S", f"infer.questions.n={n}")
    # The workers outlive `dvc queue start` and inherit its stdout/stderr: a file, not a pipe that
    # subprocess would read until they exit.
    with open(project.parent / "queue-start.log", "w") as log:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", "2"], cwd=project, env=_env(),
                       stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
    deadline = time.monotonic() + TIMEOUT_S
    states: dict[str, str] = {}
    checked = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(5)
        # `dvc queue status` takes seconds of the CPU the experiments need: asked when every experiment
        # has its result ref (a finished one) or once a minute (a failed one has none).
        if len(_experiment_refs(project)) < len(EXPERIMENTS) and time.monotonic() - checked < 60:
            continue
        checked, states = time.monotonic(), _queue_states(project)
        if len(states) == len(EXPERIMENTS) and all(s in {"Success", "Failed"} for s in states.values()):
            return states
    raise AssertionError(f"queue not done after {TIMEOUT_S} s: {states}")


@pytest.fixture(scope="module")
def queued(project: Path):
    started = time.monotonic()
    try:
        states = _run_queue(project)
    finally:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "stop", "--kill"], cwd=project, env=_env(),
                       capture_output=True, timeout=120)
    print(f"two queued experiments, -j 2: {time.monotonic() - started:.0f} s")
    logs = {name: subprocess.run([sys.executable, "-m", "dvc", "queue", "logs", name], cwd=project, env=_env(),
                                 capture_output=True, text=True, timeout=120).stdout for name in EXPERIMENTS}
    assert all(s == "Success" for s in states.values()), \
        f"{states}\n" + "\n".join(f"--- {name}\n{log[-3000:]}" for name, log in logs.items())
    return project, logs


def test_both_queued_experiments_ran_in_temporary_workspaces(queued):
    project, logs = queued
    shown = json.loads(_dvc(project, "exp", "show", "--json"))
    names = {exp.get("name") for baseline in shown for exp in (baseline.get("experiments") or [])}
    assert set(EXPERIMENTS) <= names, names
    for name, log in logs.items():
        assert "Running stage 'evaluate'" in log and "MLflow:" in log, log[-3000:]


def test_every_queued_experiment_logged_to_the_repository_store(queued):
    import mlflow

    from opinionbench.tracking.artifacts import resolve

    project, _ = queued
    store = project / "mlflow.db"
    assert store.is_file(), "no mlflow.db in the repository: the queued runs went elsewhere"
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    by_experiment: dict[str, list] = {}
    for run in runs:
        by_experiment.setdefault(run.data.tags.get("DVC_EXP_NAME", ""), []).append(run)
    assert set(EXPERIMENTS) <= set(by_experiment), sorted(by_experiment)
    for name, n in EXPERIMENTS.items():
        model_runs = [r for r in by_experiment[name] if r.data.tags.get("opinionbench.role") == "model-run"]
        assert {r.data.params.get("model") for r in model_runs} >= {"uniform", "overall-prior", "similar-questions"}
        assert all(r.data.params.get("n_questions") == str(n) for r in model_runs), name
        assert all(r.data.metrics.get("rep_groups") is not None for r in model_runs), name
        # Artifacts too: in the repository's mlartifacts/, not in the deleted temporary workspace.
        for run in model_runs:
            # A location relative to the store (opinionbench's MLflow artifact-repository plug-in).
            assert run.info.artifact_uri.startswith("opinionbench:"), run.info.artifact_uri
            location = resolve(run.info.artifact_uri, f"sqlite:///{store}")
            assert location.is_relative_to(project / "mlartifacts"), run.info.artifact_uri
            assert list(location.rglob("*.parquet")), f"{name}: no predictions artifact in {location}"
