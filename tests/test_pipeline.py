"""The whole pipeline, for real: `dvc repro` in a throwaway copy of the project.

Why one big test: the properties that matter to users are properties of the DVC graph, not of
any one stage — a fresh copy runs end to end offline on the embedded sample; the second
`dvc repro` runs nothing; changing one model's params makes only that model's stages stale;
the MLflow store holds the runs with metrics, inputs and lineage tags.

The copy is made from the files git would check out (tracked + untracked, not ignored), so it
behaves like a fresh clone. The converted SmolLM2 weights (data/models, ~26 s to make) are
shared with the working tree through a symlink, as a user's cache would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.pipeline
QUESTIONS = 3


def _git_files(*args: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=REPO, check=True, capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _project_files() -> list[str]:
    """What a clone holds: tracked files, plus new (untracked) source files outside data/.

    Untracked files under data/ are outputs of earlier runs in the working tree; a clone has none.
    """
    new = [f for f in _git_files("--others", "--exclude-standard") if not f.startswith("data/")]
    return sorted(set(_git_files("--cached")) | set(new))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GX_ANALYTICS_ENABLED="false", MLFLOW_ENABLE_TELEMETRY="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1", OPINIONBENCH_TEST_API_KEY="sk-pipeline-SECRET-42")
    return env


def _run(args: list[str], cwd: Path, timeout: int = 1500) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clone")
    for rel in _project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    models = REPO / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (root / "data" / "models").symlink_to(models, target_is_directory=True)
    # Fewer questions than the default run, same stages and methods: the graph is what is tested here.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["infer"]["questions"]["n"] = QUESTIONS
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "clone"], root)
    return root


@pytest.fixture(scope="module")
def reproduced(project: Path) -> tuple[Path, str]:
    return project, _run([sys.executable, "-m", "dvc", "repro"], project)


def _stale_stages(project: Path) -> set[str]:
    out = _run([sys.executable, "-m", "dvc", "status", "--json"], project)
    import json

    return set(json.loads(out[out.index("{"):]))


def test_fresh_copy_runs_end_to_end(reproduced):
    project, log = reproduced
    for stage in ("ocr@W900", "correct@W900", "build", "validate", "infer@smollm2-logprobs",
                  "infer@smollm2-verbalized", "infer@smollm2-sequence", "infer-baseline@uniform",
                  "validate-predictions", "calibrate", "evaluate"):
        assert f"'{stage}'" in log, f"stage {stage} did not run:\n{log[-3000:]}"
    predictions = project / "data/predictions/opinionqa_xl"
    for model, method in [("smollm2", "logprobs"), ("smollm2", "verbalized"), ("smollm2", "sequence"),
                          ("uniform", "baseline"), ("overall-prior", "baseline"), ("similar-questions", "baseline")]:
        assert list((predictions / model / method).glob("*.parquet")), f"no predictions for {model}/{method}"
    leaderboards = list((project / "data/reports/leaderboards").glob("*"))
    assert any(p.suffix == ".csv" for p in leaderboards) and any(p.suffix == ".md" for p in leaderboards)
    figures = list((project / "data/reports/figures").glob("*.png"))
    assert len(figures) >= 3, figures
    metrics = _run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], project)
    assert "rep_groups" in metrics and "rep_overall" in metrics


def test_second_repro_runs_nothing(reproduced):
    project, _ = reproduced
    assert _stale_stages(project) == set()
    log = _run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Running stage" not in log, log[-3000:]


def test_changing_one_model_makes_only_its_stages_stale(reproduced):
    project, _ = reproduced
    params_path = project / "params.yaml"
    original = params_path.read_text()
    try:
        params = yaml.safe_load(original)
        params["models"]["smollm2"]["batch_size"] = 4
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        assert _stale_stages(project) == {"infer@smollm2-logprobs", "infer@smollm2-verbalized",
                                          "infer@smollm2-sequence"}
        params["models"]["smollm2"]["batch_size"] = yaml.safe_load(original)["models"]["smollm2"]["batch_size"]
        params["models"]["smollm2-server"]["concurrency"] = 2  # a model not in infer.run: nothing to redo
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        assert _stale_stages(project) == set()
    finally:
        params_path.write_text(original)


def test_mlflow_store_holds_the_runs_with_lineage(reproduced):
    import mlflow

    project, _ = reproduced
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert children, "no per-(model, method, steering) runs"
    models = {r.data.params.get("model") or r.data.tags.get("model") for r in children}
    assert {"smollm2", "uniform"} <= models, models
    smol = [r for r in children if (r.data.params.get("model") or r.data.tags.get("model")) == "smollm2"]
    for run in smol:
        assert run.data.metrics, run.info.run_id
        assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.digest
        assert run.data.tags.get("git.commit", "unknown") != "unknown", run.data.tags
        assert any(t.startswith("dvc.lock.") for t in run.data.tags), run.data.tags
    text = " ".join(str(v) for r in runs for v in (*r.data.params.values(), *r.data.tags.values()))
    assert "sk-pipeline-SECRET-42" not in text
    # What a researcher compares in the UI: the swept knobs as params, the named metrics, cost.
    logprobs = [r for r in smol if r.data.params.get("method") == "logprobs" and r.data.params.get("calibrated") == "False"]
    for run in logprobs:
        params, metrics = run.data.params, run.data.metrics
        assert {"method.combine", "method.option_orders", "infer.k_shots", "infer.persona_style", "infer.groups",
                "infer.questions.n", "infer.questions.seed", "model.backend", "model.batch_size", "model.dtype"} \
            <= set(params), sorted(params)
        assert {"infer_seconds", "infer_tokens", "steerability", "calibration_tv_before", "calibration_tv_after"} <= set(metrics)
        assert metrics["infer_tokens"] > 0
    sequence = [r for r in smol if r.data.params.get("method") == "sequence"]
    assert sequence and all("k2s_gap" in r.data.metrics for r in sequence)
    assert any(r.data.tags.get("opinionbench.role") == "human-reference" for r in runs)
    models = mlflow.search_logged_models(experiment_ids=[children[0].info.experiment_id], output_format="list")
    assert "smollm2" in {m.name for m in models}
    # evaluating again with nothing changed adds no run
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    subprocess.run([sys.executable, "-m", "opinionbench.cli", "evaluate"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=600)
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == len(runs)
