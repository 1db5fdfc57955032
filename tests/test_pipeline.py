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
        # check-params reads all of params.yaml, so it is always re-checked; its output stays the
        # same, so nothing downstream of it reruns for that.
        assert _stale_stages(project) == {"check-params", "infer@smollm2-logprobs", "infer@smollm2-verbalized",
                                          "infer@smollm2-sequence"}
        params["models"]["smollm2"]["batch_size"] = yaml.safe_load(original)["models"]["smollm2"]["batch_size"]
        params["models"]["smollm2-server"]["concurrency"] = 2  # a model not in infer.run: nothing to redo
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        assert _stale_stages(project) == {"check-params"}
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
        assert {"infer.logprobs.combine", "infer.option_orders", "infer.k_shots", "infer.persona_style", "infer.groups",
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


# --- sharing the results: the release, the DVC remote, a fresh clone, dvc get/import ----------------
# The same pipeline run, pushed once to the project's default remote (.dvc/config: a directory beside
# the project, here beside the throwaway copy); a clone beside it finds the same remote.


def _commit(repo: Path, message: str) -> None:
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message, "--allow-empty"], repo)


@pytest.fixture(scope="module")
def pushed(reproduced) -> Path:
    project, _ = reproduced
    _commit(project, "dvc repro")  # dvc.lock and the uncached metrics/plots, as a user commits them
    _run([sys.executable, "-m", "dvc", "push"], project)
    remote = project.parent / "opinionbench-dvc-remote"
    assert any(remote.rglob("*")), f"dvc push wrote nothing to the default remote {remote}"
    return project


def test_release_stage_writes_a_release_that_datasets_and_mlcroissant_read(reproduced):
    import datasets
    import mlcroissant as mlc
    import pandas as pd

    project, log = reproduced
    assert "'release'" in log
    release = project / "data/release/opinionqa_xl"
    validated = pd.read_parquet(project / "data/validation/dataset/questions.parquet")
    questions = datasets.load_dataset(str(release), "questions", split="test",
                                      cache_dir=str(project.parent / "hf-cache"))
    assert sorted(questions["qkey"]) == sorted(validated["qkey"])
    mlc.Dataset(jsonld=str(release / "croissant.json"))  # raises on an invalid file
    assert (project / "data/release/human_resp/Pew_American_Trends_Panel_W900/POLPARTY_data.json").is_file()


def test_pull_in_a_fresh_clone_is_clean_and_repro_runs_nothing(pushed):
    clone = pushed.parent / "fresh-clone"  # beside the project: the same ../opinionbench-dvc-remote
    _run(["git", "clone", "-q", str(pushed), str(clone)], pushed.parent)
    assert not (clone / "data/validation/dataset").exists()
    _run([sys.executable, "-m", "dvc", "pull"], clone)
    assert _stale_stages(clone) == set()
    log = _run([sys.executable, "-m", "dvc", "repro"], clone)
    assert "Running stage" not in log, log[-3000:]
    assert (clone / "data/release/opinionqa_xl/croissant.json").is_file()


def test_dvc_import_and_get_the_validated_dataset_from_another_repository(pushed, tmp_path):
    import pandas as pd

    from opinionbench.tables import read_dataset

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    _run(["git", "init", "-q"], consumer)
    _run([sys.executable, "-m", "dvc", "init", "-q"], consumer)
    _run([sys.executable, "-m", "dvc", "import", str(pushed), "data/validation/dataset", "-o", "opinionqa_xl"], consumer)
    assert (consumer / "opinionqa_xl.dvc").is_file()
    ours, theirs = read_dataset(consumer / "opinionqa_xl"), read_dataset(pushed / "data/validation/dataset")
    for mine, original in zip(ours, theirs):
        pd.testing.assert_frame_equal(mine, original)
    _commit(consumer, "import")
    assert _stale_stages(consumer) == set()
    _run([sys.executable, "-m", "dvc", "get", str(pushed), "data/release/opinionqa_xl", "-o", "release"], tmp_path)
    assert (tmp_path / "release/croissant.json").is_file() and (tmp_path / "release/README.md").is_file()
