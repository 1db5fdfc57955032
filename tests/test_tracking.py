"""MLflow lineage through the real evaluate stage and a real SQLite store, read back with search_runs."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _evaluation_project import SECRET, make_project
from opinionbench.tracking import lineage, secrets, store
from opinionbench.tracking.settings import TrackingParams
from opinionbench.cli import main


def test_redact_replaces_credential_like_environment_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("HOME_DIR_NAME", "not-a-secret-value")
    assert secrets.redact(f"key={SECRET}!") == "key=***!"
    assert secrets.redact("not-a-secret-value") == "not-a-secret-value"


def test_declared_api_key_env_names_are_redacted_whatever_their_name(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"models": {"a": {"backend": "openai", "api_key_env": "LLM_ACCESS"}},
                                      "questionnaire": {"correct": {"api_key_env": "OTHER_VAR"}}}))
    names = secrets.declared_secret_names(params)
    assert names == ["LLM_ACCESS", "OTHER_VAR"]
    env = {"LLM_ACCESS": "abcdef-123456", "HOME": "/root/home"}
    assert secrets.secret_values(env) == []
    assert secrets.secret_values(env, names) == ["abcdef-123456"]
    assert secrets.declared_secret_names(tmp_path / "missing.yaml") == []


def test_dvc_lock_hashes_find_file_and_directory_outs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "build": {"outs": [{"path": "data/build/questions.parquet", "md5": "abc123"}]},
        "infer": {"outs": [{"path": "data/predictions/sample/toy", "md5": "dir999.dir"}]},
    }}))
    tags = lineage.dvc_lock_hashes([Path("data/build/questions.parquet"),
                                     Path("data/predictions/sample/toy/logprobs/none.parquet"), Path("elsewhere.txt")])
    assert tags == {"dvc.lock.data/build/questions.parquet": "abc123", "dvc.lock.data/predictions/sample/toy": "dir999.dir"}


def test_tracking_uri_environment_wins(monkeypatch):
    params = TrackingParams()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.tracking_uri(params) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/other.db")
    assert store.tracking_uri(params) == "sqlite:////tmp/other.db"


def test_relative_store_is_anchored_at_the_original_repository_in_a_dvc_temp_workspace(tmp_path):
    """`dvc exp run --queue` runs stages in <repo>/.dvc/tmp/exps/<tmp> with DVC_ROOT = <repo>: the
    default `sqlite:///mlflow.db` and `mlartifacts` must be the repository's, not the copy's."""
    repo = tmp_path / "repo"
    temp = repo / ".dvc" / "tmp" / "exps" / "tmpk2x9"
    temp.mkdir(parents=True)
    params = TrackingParams()
    queued = {"DVC_ROOT": str(repo), "DVC_EXP_NAME": "exp-a"}
    assert store.tracking_uri(params, cwd=temp, environ=queued) == f"sqlite:///{repo.resolve()}/mlflow.db"
    assert store.artifact_root(params, cwd=temp, environ=queued) == repo.resolve() / "mlartifacts"
    relative_env = {**queued, "MLFLOW_TRACKING_URI": "sqlite:///stores/runs.db"}
    assert store.tracking_uri(params, cwd=temp, environ=relative_env) == f"sqlite:///{repo.resolve()}/stores/runs.db"
    for uri in ("sqlite:////srv/mlflow/mlflow.db", "http://127.0.0.1:5000"):  # absolute stores and servers: as given
        assert store.tracking_uri(params, cwd=temp, environ={**queued, "MLFLOW_TRACKING_URI": uri}) == uri
    # A workspace run (`dvc repro`, `dvc exp run`): DVC_ROOT is the cwd, nothing changes.
    assert store.tracking_uri(params, cwd=repo, environ={"DVC_ROOT": str(repo)}) == "sqlite:///mlflow.db"
    assert store.artifact_root(params, cwd=repo, environ={"DVC_ROOT": str(repo)}) == repo.resolve() / "mlartifacts"
    assert store.tracking_uri(params, cwd=repo / "src", environ={"DVC_ROOT": str(repo)}) == "sqlite:///mlflow.db"


def test_temp_workspace_without_dvc_root_refuses_a_throwaway_store_in_one_line(tmp_path):
    temp = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpk2x9"
    temp.mkdir(parents=True)
    params = TrackingParams()
    with pytest.raises(store.TrackingError, match="set MLFLOW_TRACKING_URI to an absolute") as caught:
        store.tracking_uri(params, cwd=temp, environ={})
    assert "\n" not in str(caught.value) and str(temp.resolve()) in str(caught.value)
    absolute = {"MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow/mlflow.db"}
    assert store.tracking_uri(params, cwd=temp, environ=absolute) == absolute["MLFLOW_TRACKING_URI"]


def test_store_lock_makes_writers_of_one_sqlite_file_take_turns(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'stores' / 'mlflow.db'}"
    inside, order = threading.Event(), []

    def first_writer() -> None:
        with store.store_lock(uri):
            order.append("first in")
            inside.set()
            time.sleep(0.5)
            order.append("first out")

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert inside.wait(10)
    with store.store_lock(uri):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]
    assert "waiting for another writer" in capsys.readouterr().err
    assert (tmp_path / "stores" / "mlflow.db").is_file()  # an empty file: SQLite's new database
    with store.store_lock("http://127.0.0.1:5000"):  # a server serialises its own writes: no lock
        pass


@pytest.mark.slow
def test_evaluate_logs_runs_with_lineage_and_never_the_api_key(tmp_path, sample_sav, monkeypatch):
    import mlflow

    root = tmp_path / "project"
    root.mkdir()
    store = root / "mlflow.db"
    make_project(root, sample_sav, tracking_uri="sqlite:///mlflow.db", tracking=True)  # the default: beside the repo
    # A second key in a variable whose name looks harmless; params.yaml declares it as an api_key_env.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"] = {"remote": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                                   "api_key_env": "LLM_ACCESS_VAR"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    hidden = "hidden-0123456789-value"
    frame = pd.read_parquet(root / "data/predictions/sample/toy/sequence/none.parquet")
    frame["raw_reply"] = f"echo {hidden}"
    frame.to_parquet(root / "data/predictions/sample/toy/sequence/none.parquet")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "params.yaml"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"build": {"outs": [
        {"path": "data/build/questions.parquet", "md5": "q-md5"},
        {"path": "data/build/distributions.parquet", "md5": "d-md5"}]}}}))
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LLM_ACCESS_VAR", hidden)
    assert main(["calibrate"]) == 0
    assert main(["evaluate"]) == 0

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    experiment = mlflow.get_experiment_by_name("opinionbench/sample")
    # Artifacts beside the store, under a location relative to it (resolved by opinionbench's
    # MLflow artifact-repository plug-in), so they survive a move of the checkout below.
    assert experiment is not None and experiment.artifact_location == "opinionbench:mlartifacts"
    runs = mlflow.search_runs([experiment.experiment_id], output_format="pandas")
    parents = runs[runs["tags.opinionbench.role"] == "execution"]
    children = runs[runs["tags.opinionbench.role"] == "model-run"]
    assert len(parents) == 1 and len(children) == 8  # 5 toy files + 3 calibrated
    assert (children["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]).all()
    assert (children["tags.git.commit"] == head).all()
    assert (children["tags.dvc.lock.data/build/questions.parquet"] == "q-md5").all()
    # What was actually read, independent of dvc.lock (here deliberately stale): the file's md5.
    real_md5 = hashlib.md5((root / "data/build/questions.parquet").read_bytes()).hexdigest()
    assert (children["tags.data.md5.data/build/questions.parquet"] == real_md5).all()
    persona = children[children["tags.mlflow.runName"] == "toy · logprobs · persona"].iloc[0]
    assert persona["params.model_id"] == "toy/toy" and persona["params.model_revision"] == "r1"
    assert persona["params.method"] == "logprobs" and persona["params.steering"] == "persona"
    assert persona["params.template_hash"] == "tmpl-persona" and len(persona["params.question_sample"]) == 16
    assert persona["metrics.rep_groups"] > 0.8
    scaled = children[children["tags.mlflow.runName"] == "toy · logprobs+T · none"].iloc[0]
    assert float(scaled["params.calibration_temperature"]) > 1.3 and scaled["params.calibrated"] == "True"

    client = mlflow.MlflowClient()
    run = client.get_run(persona["run_id"])
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "sample" and inputs[0].dataset.digest
    assert run.data.tags["dataset.digest"] == inputs[0].dataset.digest
    artifacts = {a.path for top in client.list_artifacts(run.info.run_id) for a in client.list_artifacts(run.info.run_id, top.path)}
    assert {"leaderboards/sample.csv", "leaderboards/sample.md", "figures/sample_leaderboard.png",
            "figures/sample_group_heatmap.png", "predictions/persona.parquet"} <= artifacts
    parent = parents["run_id"].iloc[0]
    parent_artifacts = {a.path for top in client.list_artifacts(parent) for a in client.list_artifacts(parent, top.path)}
    assert {"leaderboards/sample.md", "figures/sample_reliability.png"} <= parent_artifacts
    assert not any(a.startswith("predictions/") for a in parent_artifacts)

    # The key set in the environment is nowhere: params, tags, the store's bytes, any artifact.
    assert not runs.astype(str).apply(lambda col: col.str.contains(SECRET)).any().any()
    assert SECRET.encode() not in store.read_bytes()
    verbalized = children[children["tags.mlflow.runName"] == "toy · verbalized · none"].iloc[0]
    local = Path(client.download_artifacts(verbalized["run_id"], "predictions", str(tmp_path / "dl")))
    replies = pd.read_parquet(local / "none.parquet")["raw_reply"]
    assert replies.str.contains(r"\*\*\*").all() and not replies.str.contains(SECRET).any()
    assert hidden.encode() not in store.read_bytes()
    for path in (root / "mlartifacts").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and hidden.encode() not in data, path
    sequence = children[children["tags.mlflow.runName"] == "toy · sequence · none"].iloc[0]
    local = Path(client.download_artifacts(sequence["run_id"], "predictions", str(tmp_path / "dl2")))
    assert (pd.read_parquet(local / "none.parquet")["raw_reply"] == "echo ***").all()

    # The leaderboard's cross-entry numbers on the runs they belong to, under fixed names.
    assert sequence["metrics.k2s_gap"] == pytest.approx(verbalized["metrics.k2s_gap"])
    unscaled = children[children["tags.mlflow.runName"] == "toy · logprobs · none"].iloc[0]
    assert unscaled["metrics.calibration_tv_after"] < unscaled["metrics.calibration_tv_before"]
    assert persona["metrics.steerability"] > 0
    assert children["params.evaluate.bootstrap"].notna().all() and children["params.evaluate.seed"].notna().all()
    assert (children["tags.mlflow.source.git.commit"] == head).all()
    # The experiment opens on the runs table (classic model development), not the GenAI overview.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    # Evaluate again with nothing changed: no run is added. A changed predictions file is one new run.
    assert main(["evaluate"]) == 0
    assert len(mlflow.search_runs([experiment.experiment_id], output_format="pandas")) == len(runs)
    changed = root / "data/predictions/sample/toy/verbalized/none.parquet"
    frame = pd.read_parquet(changed)
    frame.loc[0, "raw_reply"] = "another reply"
    frame.to_parquet(changed)
    assert main(["evaluate"]) == 0
    again = mlflow.search_runs([experiment.experiment_id], output_format="pandas")
    assert len(again) == len(runs) + 2  # the changed entry and its execution's parent run
    assert set(again.loc[~again["run_id"].isin(runs["run_id"]), "tags.mlflow.runName"]) >= {"toy · verbalized · none"}

    # Human reference rows are runs of their own, beside the models.
    humans = runs[runs["tags.opinionbench.role"] == "human-reference"]
    assert len(humans) >= 2 and humans["tags.mlflow.runName"].str.startswith("humans").all()
    assert humans["metrics.rep_groups"].notna().any() or humans["metrics.rep_overall"].notna().any()

    # Each models: entry (and each baseline) is an MLflow 3 logged model; its runs link to it.
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert "toy" in {m.name for m in models} and len(models) == len({m.name for m in models})
    toy = next(m for m in models if m.name == "toy")
    assert toy.params["model_id"] == "toy/toy" and toy.params["model_revision"] == "r1"
    assert {i.model_id for i in client.get_run(persona["run_id"]).inputs.model_inputs} == {toy.model_id}

    # A per-question table per run, for inspection in the UI (string cells redacted).
    mlflow.set_experiment(experiment_id=experiment.experiment_id)  # load_table searches the active experiment
    table = mlflow.load_table("questions.json", run_ids=[verbalized["run_id"]])
    assert {"qkey", "question", "options", "group", "human", "predicted", "tv", "raw_reply"} <= set(table.columns)
    assert len(table) > 0 and not table.astype(str).apply(lambda c: c.str.contains(SECRET)).any().any()

    # The repository moves (mlflow.db and mlartifacts/ with it): the runs' artifacts still resolve.
    moved = tmp_path / "moved-project"
    shutil.move(str(root), str(moved))
    monkeypatch.chdir(moved)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow exported it in this process
    assert main(["evaluate"]) == 0
    mlflow.set_tracking_uri(f"sqlite:///{moved / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    assert client.get_experiment(experiment.experiment_id).artifact_location == "opinionbench:mlartifacts"
    local = Path(client.download_artifacts(persona["run_id"], "predictions", str(tmp_path / "dl3")))
    beside = moved / "mlartifacts" / persona["run_id"] / "artifacts" / "predictions" / "persona.parquet"
    assert (local / "persona.parquet").read_bytes() == beside.read_bytes()
    assert client.get_run(persona["run_id"]).info.artifact_uri == f"opinionbench:mlartifacts/{persona['run_id']}/artifacts"
