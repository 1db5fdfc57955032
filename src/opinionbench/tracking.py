"""MLflow lineage: which data, prompts and code made each leaderboard number.

Layout: one experiment per dataset (`<prefix>/<dataset>`), one parent run per pipeline
execution (per dataset), one child run per (model, dataset, method, steering[, +T]) with its
params, metrics, artifacts, the dataset logged as an MLflow input (with its digest), and
lineage tags: the git commit (and whether the tree was dirty), the `dvc.lock` hashes of the
data files it used and their md5 as actually read (`data.md5.<path>`).

Secrets: API keys reach the pipeline only through environment variables. Before anything is
sent to MLflow (params, tags, text and parquet artifacts), every value of an environment
variable whose name looks like a credential, or that params.yaml names as an `api_key_env`, is
replaced by `***`, so a key echoed into a reply or a path can never be stored.

Parallel experiments: `dvc exp run --queue` runs each experiment in a temporary copy of the
repository (`.dvc/tmp/exps/...`) without git-ignored files, so a relative SQLite store there
would be a throwaway one. A relative store and artifact folder are therefore anchored at the
original repository (DVC exports it to stages as `DVC_ROOT`), and writers of one SQLite file
take turns (`store_lock`); an MLflow tracking server needs neither.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from opinionbench.config import TrackingParams
from opinionbench.errors import OpinionBenchError
from opinionbench.inference.predictions import run_metadata
from opinionbench.io import InputFileError, read_structured
from opinionbench.scoring.evaluation import question_sample_digest

if TYPE_CHECKING:
    from opinionbench.scoring.leaderboard import DatasetEvaluation

os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

# MLflow 3's UI opens an experiment on its GenAI overview (traces) unless its kind says otherwise;
# these runs are model evaluations, compared in the runs table.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
RUN_KEY_TAG = "opinionbench.run_key"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CRED|AUTH)", re.IGNORECASE)
REDACTED = "***"


class TrackingError(OpinionBenchError):
    """The MLflow store cannot be reached or written."""


def declared_secret_names(params_path: Path) -> list[str]:
    """Environment variable names that params.yaml declares as holding keys (`api_key_env` anywhere).

    A key may live in a variable with an innocent name (`MY_LLM_CREDS`); the params say which
    variables hold keys, so their values are redacted whatever the name looks like.
    """
    try:
        raw = read_structured(params_path, kind="yaml")
    except InputFileError:
        return []
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "api_key_env" and isinstance(value, str) and value:
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(raw)
    return sorted(names)


def secret_values(environ: Mapping[str, str] | None = None, names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Values of credential-like environment variables, and of those `names` (longest first, so
    overlapping secrets redact fully). Values under 6 characters are too short to redact safely."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if (_SECRET_NAME.search(k) or k in names) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(value: Any, secrets: list[str] | None = None) -> str:
    text = str(value)
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    return text


SQLITE = "sqlite:///"
# Where `dvc exp run --queue/--temp` makes its temporary workspaces, inside the repository.
DVC_TEMP_WORKSPACES = Path(".dvc", "tmp", "exps")


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def dvc_temp_origin(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The original repository when this process runs in a DVC temporary experiment workspace; else None.

    A queued experiment runs in a copy under `<repo>/.dvc/tmp/exps/` that lacks git-ignored files
    (`mlflow.db`, `mlartifacts/`) and is deleted afterwards. DVC exports the original root to
    every stage as `DVC_ROOT` (a workspace run sets it to the repository itself, the cwd).
    """
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).resolve()
    root = env.get("DVC_ROOT")
    if root:
        origin = Path(root).resolve()
        in_workspace = _within(here, origin) and not _within(here, origin / ".dvc")
        return None if in_workspace else origin
    if any(DVC_TEMP_WORKSPACES.parts == here.parts[i:i + 3] for i in range(len(here.parts) - 2)):
        raise TrackingError(f"{here} is a DVC temporary experiment workspace and DVC_ROOT is not set: "
                            "set MLFLOW_TRACKING_URI to an absolute sqlite:////path/mlflow.db or an http:// "
                            "MLflow server, or the runs are lost with the workspace")
    return None


def _relative_sqlite(uri: str) -> str | None:
    """The path of a `sqlite:///relative.db` URI (relative to the cwd); None for any other URI."""
    if not uri.startswith(SQLITE):
        return None
    path = uri[len(SQLITE):]
    if not path or path.startswith("/") or path.startswith(":memory:") or re.match(r"[A-Za-z]:[/\\]", path):
        return None
    return path


def tracking_uri(params: TrackingParams, cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The store runs go to: MLFLOW_TRACKING_URI, else `tracking.tracking_uri`.

    A relative SQLite path is kept as is in the repository, and anchored at the original
    repository inside a DVC temporary workspace (queued experiments), so that their runs land
    in the same `mlflow.db` as every other run instead of a copy deleted after the experiment.
    """
    env = os.environ if environ is None else environ
    uri = env.get("MLFLOW_TRACKING_URI") or params.tracking_uri
    relative = _relative_sqlite(uri)
    if relative is None:
        return uri
    origin = dvc_temp_origin(cwd, env)
    return uri if origin is None else f"{SQLITE}{origin / relative}"


def artifact_root(params: TrackingParams, cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """`tracking.artifact_root` as an absolute folder: relative to the repository, the original one
    inside a DVC temporary workspace (artifacts written there would be deleted with it)."""
    root = Path(params.artifact_root).expanduser()
    if root.is_absolute():
        return root
    return ((dvc_temp_origin(cwd, environ) or cwd or Path.cwd()) / root).resolve()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (absolute), or None for a server or other store."""
    if not uri.startswith(SQLITE) or uri[len(SQLITE):].startswith(":memory:"):
        return None
    return Path(uri[len(SQLITE):].split("?", 1)[0]).resolve()


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Writers of one SQLite store, one at a time (an exclusive `flock` on the database file).

    `dvc queue start -j 2` runs two `evaluate` stages at once against one file; SQLite's own
    locking makes one of them fail with "database is locked" when the other holds a write
    transaction past the driver's 5 s timeout, and two first-time schema creations race. The
    lock is advisory, held for one `evaluate`'s logging (seconds on the sample) and independent
    of SQLite's fcntl locks, so `mlflow ui` reading the file is not blocked. Servers: no lock.
    """
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # an empty file is a valid new SQLite database
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"MLflow: waiting for another writer of {path} (a parallel experiment's evaluate)",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def git_lineage(cwd: Path = Path(".")) -> dict[str, str]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    tags = {"git.commit": commit or "unknown", "git.dirty": "unknown" if status is None else str(bool(status)).lower()}
    if commit:
        tags["mlflow.source.git.commit"] = commit  # what MLflow's UI shows as the run's source version
    # `dvc exp run` exports these to the stages it runs: which experiment, on which baseline commit
    for name in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(name):
            tags[name] = os.environ[name]
    return tags


def dvc_lock_hashes(used: list[Path], lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """`dvc.lock` hash of each used file: its own out entry, or the directory out that holds it."""
    if not lock.exists():
        return {}
    try:
        stages = (read_structured(lock, kind="yaml") or {}).get("stages", {})
    except InputFileError:
        return {}
    outs: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.get("outs", []) or []:
            digest = out.get("md5") or out.get("hash") or out.get("etag")
            if out.get("path") and digest:
                outs[str(Path(out["path"]))] = str(digest)
    tags = {}
    for path in used:
        rel = Path(os.path.relpath(Path(path).resolve(), Path.cwd().resolve())) if Path(path).is_absolute() else Path(path)
        for candidate in [rel, *rel.parents]:
            if str(candidate) in outs:
                tags[f"dvc.lock.{candidate}"] = outs[str(candidate)]
                break
    return tags


def file_md5s(used: list[Path]) -> dict[str, str]:
    """`data.md5.<path>`: the md5 of each used file as read now (DVC's file hash).

    The `dvc.lock` tags say what the pipeline last recorded; these say what this run actually
    read, so a run made outside `dvc repro` on edited data is still traceable (the two differ).
    """
    tags = {}
    for path in used:
        path = Path(path)
        if path.is_file():
            stat = path.stat()
            rel = os.path.relpath(path.resolve(), Path.cwd().resolve()) if path.is_absolute() else str(path)
            tags[f"data.md5.{rel}"] = _md5(path.resolve(), stat.st_size, stat.st_mtime_ns)
    return tags


@functools.lru_cache(maxsize=256)
def _md5(path: Path, size: int, mtime_ns: int) -> str:
    """A file's md5, read once per (file, size, mtime): every run of an execution names the same
    truth files (28 MB of distributions on the real build), for its run key and its lineage tags."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _redacted(frame: pd.DataFrame, secrets: list[str]) -> pd.DataFrame:
    """`frame` with secrets redacted in every string cell (a copy)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: redact(v, secrets) if isinstance(v, str) else v)
    return out


def _scrubbed_copy(path: Path, folder: Path, secrets: list[str]) -> Path:
    """A copy of an artifact with secrets redacted (text and parquet string columns); binaries as is."""
    target = folder / path.name
    if path.suffix in {".csv", ".md", ".json", ".txt", ".yaml"}:
        target.write_text(redact(path.read_text(errors="replace"), secrets))
    elif path.suffix == ".parquet":
        _redacted(pd.read_parquet(path), secrets).to_parquet(target, index=False)
    else:
        target.write_bytes(path.read_bytes())
    return target


class Tracker:
    """One pipeline execution's MLflow runs: `with tracker.dataset(name): tracker.log_run(...)`."""

    def __init__(self, params: TrackingParams, execution: str, secret_names: list[str] | tuple[str, ...] = ()) -> None:
        try:
            import mlflow
        except ImportError as exc:  # pragma: no cover - mlflow is a dependency
            raise TrackingError(f"mlflow not importable: {exc}") from None
        self.mlflow = mlflow
        self.params = params
        self.execution = execution
        self.uri = tracking_uri(params)
        # Decided before set_tracking_uri, which exports MLFLOW_TRACKING_URI itself.
        self.own_store = self.uri.startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI")
        # Local artifacts for a SQLite store (MLflow's default, ./mlruns in the cwd, would be inside a
        # queued experiment's temporary workspace); a server keeps its own artifact store.
        self.artifact_root = artifact_root(params) if sqlite_path(self.uri) else None
        self.secrets = secret_values(names=secret_names)
        self.lineage = git_lineage()
        self._experiment: str | None = None
        self._inputs: dict[int, tuple[pd.DataFrame, Any]] = {}
        self._models: dict[tuple[str, str, str], str] = {}
        try:
            mlflow.set_tracking_uri(self.uri)
        except Exception as exc:
            raise TrackingError(f"tracking URI {redact(self.uri, self.secrets)}: {exc}") from None
        if self.own_store and self.artifact_root is not None:
            relocate_artifacts(sqlite_path(self.uri), self.artifact_root)

    def _experiment_id(self, dataset: str) -> str:
        name = f"{self.params.experiment_prefix}/{dataset}"
        client = self.mlflow.MlflowClient()
        try:
            found = client.get_experiment_by_name(name)
            if found is not None:
                if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
                return found.experiment_id
            location = self.artifact_root.as_uri() if self.artifact_root else None  # git-ignored mlartifacts/
            return self._create_experiment(client, name, location, dataset)
        except Exception as exc:
            raise TrackingError(f"MLflow store {redact(self.uri, self.secrets)}: cannot open experiment {name}: "
                                f"{str(exc).splitlines()[0]}") from None

    def _create_experiment(self, client: Any, name: str, location: str | None, dataset: str) -> str:
        """Create the experiment, or take the one a parallel experiment's evaluate created meanwhile
        (two queued experiments against one tracking server both find it missing, then both create)."""
        try:
            return client.create_experiment(name, artifact_location=location,
                                            tags={"opinionbench.dataset": dataset, EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception:
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def logged_model(self, dataset: str, name: str, params: Mapping[str, Any]) -> str:
        """The MLflow 3 logged (external) model of a `models:` entry in the dataset's experiment,
        created once per (name, revision): the Models tab lists it with its runs' metrics."""
        experiment_id = self._experiment_id(dataset)
        clean = self._clean(params)
        key = (experiment_id, name, clean.get("model_revision", ""))
        if key in self._models:
            return self._models[key]
        found = self.mlflow.search_logged_models(experiment_ids=[experiment_id], filter_string=f"name = '{name}'",
                                                 output_format="list")
        same = [m for m in found if m.params.get("model_revision", "") == key[2]]
        model = same[0] if same else self.mlflow.create_external_model(
            name=name, params=clean, tags={"opinionbench.kind": clean.get("kind", "model")}, model_type="llm",
            experiment_id=experiment_id)
        self._models[key] = model.model_id
        return model.model_id

    def logged_keys(self, dataset: str) -> set[str]:
        """Run keys already in the dataset's experiment: an entry logged once is not logged again."""
        experiment_id = self._experiment_id(dataset)
        runs = self.mlflow.MlflowClient().search_runs([experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` != ''",
                                                      max_results=50_000)
        return {run.data.tags[RUN_KEY_TAG] for run in runs if RUN_KEY_TAG in run.data.tags}

    @contextmanager
    def dataset(self, dataset: str, tags: Mapping[str, str]) -> Iterator[str]:
        """The parent run of this execution for one dataset's experiment."""
        experiment_id = self._experiment_id(dataset)
        self._experiment = experiment_id
        run_tags = {**self.lineage, **tags, "opinionbench.execution": self.execution, "opinionbench.role": "execution"}
        with self.mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {self.execution}",
                                   tags=self._clean(run_tags)) as run:
            yield run.info.run_id

    def _clean(self, mapping: Mapping[str, Any]) -> dict[str, str]:
        return {str(k): redact(v, self.secrets)[:5000] for k, v in mapping.items() if v is not None}

    def log_run(self, *, run_name: str, params: Mapping[str, Any], metrics: Mapping[str, float],
                tags: Mapping[str, str], artifacts: Mapping[Path, str], data: pd.DataFrame | None = None,
                data_source: Path | None = None, data_name: str = "", used_files: list[Path] | None = None,
                model_id: str | None = None, table: pd.DataFrame | None = None) -> str:
        """A child run of the active parent: params, metrics, tags, scrubbed artifacts, dataset input.

        `artifacts` maps a local file to the artifact folder it is logged under; `model_id` (a
        logged model) links the run and its metrics to that model; `table` is logged with
        `mlflow.log_table` as `questions.json` (string cells redacted).
        """
        mlflow = self.mlflow
        lineage = {**self.lineage, **dvc_lock_hashes(used_files or []), **file_md5s(used_files or [])}
        with mlflow.start_run(experiment_id=self._experiment, run_name=run_name, nested=True,
                              tags=self._clean({**lineage, **tags, "opinionbench.execution": self.execution})) as run:
            mlflow.log_params(self._clean(params))
            finite = {k: float(v) for k, v in metrics.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and pd.notna(v)}
            if finite:
                mlflow.log_metrics(finite, model_id=model_id)
            if model_id:
                from mlflow.entities import LoggedModelInput

                mlflow.MlflowClient().log_inputs(run.info.run_id, models=[LoggedModelInput(model_id)])
            if table is not None and len(table):
                mlflow.log_table(data=_redacted(table, self.secrets), artifact_file="questions.json")
            if data is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dataset = self._input(data, data_source, data_name)
                    mlflow.log_input(dataset, context="evaluation")
                mlflow.set_tag("dataset.digest", dataset.digest)
            self.log_artifacts(artifacts)
            return run.info.run_id

    def _input(self, data: pd.DataFrame, source: Path | None, name: str) -> Any:
        """The MLflow dataset of `data`, made once per frame: MLflow infers its schema row by row
        (minutes for the 640k cells of the real build), and every run of a dataset logs the same frame."""
        cached = self._inputs.get(id(data))
        if cached is None or cached[0] is not data:
            dataset = self.mlflow.data.from_pandas(data, source=str(source or ""), name=name)
            # `schema` is a cached_property: set it from a sample (same column types, the same
            # schema) so MLflow does not walk every row's lists; digest and row count stay whole.
            dataset.__dict__["schema"] = self.mlflow.models.infer_signature(data.head(1000)).inputs
            cached = self._inputs[id(data)] = (data, dataset)
        return cached[1]

    def log_artifacts(self, artifacts: Mapping[Path, str]) -> None:
        """Scrubbed copies of local files into the active run, `artifacts` mapping file → folder.

        Called by `log_run` for a model run, and inside `dataset(...)` for the execution's parent
        run (its leaderboards and figures once, to browse an execution without opening a child).
        """
        with tempfile.TemporaryDirectory(prefix="ob-artifacts-") as tmp:
            for path, artifact_dir in artifacts.items():
                if Path(path).exists():
                    folder = Path(tmp) / artifact_dir
                    folder.mkdir(parents=True, exist_ok=True)
                    self.mlflow.log_artifact(str(_scrubbed_copy(Path(path), folder, self.secrets)),
                                             artifact_path=artifact_dir)


def relocate_artifacts(store: Path, artifact_root: Path) -> int:
    """Point the repository's own store at its artifact folder again after the repository moved.

    MLflow records artifact locations as absolute `file://` URIs; a moved or copied checkout
    (`mlflow.db` beside `mlartifacts/`) would otherwise link every run to the old place. Rows whose
    location ends in `/<artifact_root name>/...` under another parent are rewritten to the
    current root. Returns how many locations changed.
    """
    import sqlite3
    from urllib.parse import unquote, urlparse

    if not store.exists():
        return 0
    root = Path(artifact_root).resolve()
    marker = f"/{root.name}/"
    changed = 0
    with sqlite3.connect(store) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, column, key in (("experiments", "artifact_location", "experiment_id"), ("runs", "artifact_uri", "run_uuid"),
                                   ("logged_models", "artifact_location", "model_id")):
            if table not in tables:
                continue
            for row_key, uri in db.execute(f"SELECT {key}, {column} FROM {table}").fetchall():
                if not uri or not uri.startswith("file://"):
                    continue
                path = unquote(urlparse(uri).path)
                if marker not in path + "/" or path.startswith(str(root) + "/") or path == str(root):
                    continue
                tail = (path + "/").split(marker, 1)[1].rstrip("/")
                new = (root / tail).as_uri() if tail else root.as_uri()
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new, row_key))
                changed += 1
    return changed


def question_table(item: DatasetEvaluation, f: Any, frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Per-question rows for inspection in the MLflow UI: question, group, the options, the
    predicted and human distributions, TV and the raw reply (the first `limit` rows)."""
    if limit <= 0:
        return pd.DataFrame()
    scored = item.scored[f][["qkey", "attribute", "group", "tv"]].head(limit)
    human = item.truth.distributions[["qkey", "attribute", "group", "probs"]].rename(columns={"probs": "human"})
    predicted = frame[["qkey", "attribute", "group", "probs", "raw_reply"]].rename(columns={"probs": "predicted"})
    out = scored.merge(human, on=["qkey", "attribute", "group"], how="left")
    if f.steering == "none":  # an unsteered model answers once; every group is scored against that answer
        once = predicted.drop_duplicates("qkey").drop(columns=["attribute", "group"])
        out = out.merge(once, on="qkey", how="left")
    else:
        out = out.merge(predicted, on=["qkey", "attribute", "group"], how="left")
    texts = item.truth.questions.set_index("qkey")
    out.insert(1, "question", out["qkey"].map(texts["question"]))
    out.insert(2, "options", out["qkey"].map(lambda k: " | ".join(map(str, texts.at[k, "options"]))))
    for column in ("human", "predicted"):
        out[column] = out[column].map(lambda p: " ".join(f"{float(x):.3f}" for x in p) if p is not None and len(p) else "")
    out["group"] = out["attribute"] + ": " + out["group"]
    return out.drop(columns=["attribute"]).assign(tv=out["tv"].round(4))


# Leaderboard columns logged as MLflow metrics of each model run.
RUN_METRICS = ("rep_overall", "rep_overall_lo", "rep_overall_hi", "tv_overall", "rep_groups", "rep_groups_lo",
               "rep_groups_hi", "tv_groups", "tv_groups_lo", "tv_groups_hi", "rep_worst_group", "js_overall",
               "js_groups", "js_skew", "failed_rate", "n_questions")


# What inference recorded in the predictions file (inference.predictions.run_metadata) that is a
# cost, logged as metrics; everything else it recorded is logged as params (every knob it used).
RUN_COST_METRICS = ("infer_seconds", "infer_tokens", "failures", "cells")


def run_key(dataset: str, label: str, used_files: list[Path], settings: Mapping[str, Any],
            metrics: Mapping[str, Any]) -> str:
    """What makes a model run: its predictions and truth files (md5), the evaluation settings and
    the numbers they gave. Equal keys mean the run is already in MLflow; any change is a new run."""
    payload = {"dataset": dataset, "entry": label, "files": sorted(file_md5s(used_files).values()),
               "settings": dict(sorted(settings.items())),
               "metrics": {k: (round(float(v), 10) if isinstance(v, (int, float)) and pd.notna(v) else None)
                           for k, v in sorted(metrics.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def entry_metrics(item: DatasetEvaluation, f: Any) -> dict[str, float]:
    """The leaderboard's cross-entry numbers that belong to this run: `steerability` (its model
    and method, over steerings), `k2s_gap` (its model and steering, on sequence/verbalized runs),
    `calibration_tv_before`/`calibration_tv_after` (its model and steering, on log-prob runs)."""
    out: dict[str, float] = {}
    method = f"{f.method}+T" if f.calibrated else f.method
    steer = item.steerability
    rows = steer[(steer["model"] == f.model) & (steer["method"] == method)] if len(steer) else steer
    if len(rows):
        out["steerability"] = float(rows["steerability"].iloc[0])
    k2s = item.k2s
    if f.method in ("sequence", "verbalized") and not f.calibrated and len(k2s):
        rows = k2s[(k2s["model"] == f.model) & (k2s["steering"] == f.steering)]
        if len(rows):
            out["k2s_gap"] = float(rows["k2s_gap"].iloc[0])
    calib = item.calibration
    if f.method == "logprobs" and len(calib):
        rows = calib[(calib["model"] == f.model) & (calib["steering"] == f.steering)]
        if len(rows):
            out["calibration_tv_before"] = float(rows["tv_before"].iloc[0])
            out["calibration_tv_after"] = float(rows["tv_after"].iloc[0])
    return out


def log_evaluation(params: TrackingParams, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                   temperatures: dict[tuple[str, str, str], float], params_path: Path,
                   settings: Mapping[str, Any] | None = None) -> str:
    """One execution of the evaluate stage in MLflow: per dataset a parent run holding its
    leaderboards and figures (`artifacts[dataset]`), and a child run per predictions file named
    by its leaderboard entry — only for entries not already logged with the same predictions,
    truth, evaluation `settings` and numbers (`run_key`), so re-running evaluate, or adding one
    model, adds no duplicate runs. Returns the line saying what was logged where."""
    with store_lock(tracking_uri(params)):  # parallel experiments' evaluate stages take turns on one SQLite file
        return _log_evaluation(params, evaluations, artifacts, temperatures, params_path, settings)


def _log_evaluation(params: TrackingParams, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                    temperatures: dict[tuple[str, str, str], float], params_path: Path,
                    settings: Mapping[str, Any] | None) -> str:
    execution = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tracker = Tracker(params, execution, declared_secret_names(params_path))
    settings = dict(settings or {})
    evaluation_params = {f"evaluate.{k}": v for k, v in settings.items()}
    new = skipped = 0
    for item in evaluations:
        dataset = item.dataset
        by_label = {row["entry"]: row for row in item.board.to_dict("records")}
        used_data = [item.directory / "questions.parquet", item.directory / "distributions.parquet"]
        logged = item.truth.distributions[item.truth.distributions["qkey"].isin(item.asked)]
        written = {path: path.parent.name for path in artifacts[dataset]}
        done = tracker.logged_keys(dataset)
        pending = []
        for f, frame in item.frames.items():
            row = by_label.get(f.label, {})
            recorded = run_metadata(frame)
            metrics = {k: row.get(k) for k in RUN_METRICS} | entry_metrics(item, f) | {
                k: recorded[k] for k in RUN_COST_METRICS if isinstance(recorded.get(k), (int, float))}
            temperature = temperatures.get((dataset, f.model, f.steering)) if f.calibrated else None
            key = run_key(dataset, f.label, [*used_data, f.path], settings | {"temperature": temperature}, metrics)
            if key in done:
                skipped += 1
            else:
                pending.append((f, frame, recorded, metrics, key))
        references = []  # human rows of the leaderboard: their own runs, so the UI compares models with humans
        for row in item.board[item.board["kind"] == "reference"].to_dict("records"):
            key = run_key(dataset, row["entry"], used_data, settings, {k: row.get(k) for k in RUN_METRICS})
            if key in done:
                skipped += 1
            else:
                references.append((row, key))
        if not pending and not references:
            continue
        new += len(pending) + len(references)
        with tracker.dataset(dataset, {"opinionbench.dataset": dataset,
                                       "question_sample": question_sample_digest(item.asked)}):
            for f, frame, recorded, metrics, key in pending:
                run_params = {
                    "dataset": dataset, "model": f.model, "model_id": _unique(frame, "model_id"),
                    "model_revision": _unique(frame, "model_revision"), "method": f.method, "steering": f.steering,
                    "calibrated": f.calibrated, "template_hash": _unique(frame, "template_hash"),
                    "calibration_temperature": temperatures.get((dataset, f.model, f.steering)) if f.calibrated else None,
                    "question_sample": question_sample_digest(frame["qkey"]), "n_questions": frame["qkey"].nunique(),
                    "predictions_file": str(f.path),
                }
                run_params |= {k: v for k, v in recorded.items() if k not in RUN_COST_METRICS and k not in run_params}
                run_artifacts = dict(written)
                if params.log_predictions:
                    run_artifacts[f.path] = "predictions"
                model_id = tracker.logged_model(dataset, f.model, {
                    "model_id": run_params["model_id"], "model_revision": run_params["model_revision"],
                    "backend": run_params.get("backend", "baseline" if f.method == "baseline" else "unknown"),
                    "kind": "baseline" if f.method == "baseline" else "model"})
                tracker.log_run(run_name=f.label, params=run_params | evaluation_params,
                                metrics=metrics,
                                tags={"opinionbench.role": "model-run", "opinionbench.entry": f.label, RUN_KEY_TAG: key},
                                artifacts=run_artifacts, data=logged, data_source=item.directory, data_name=dataset,
                                used_files=[*used_data, f.path], model_id=model_id,
                                table=question_table(item, f, frame, params.table_rows))
            for row, key in references:
                tracker.log_run(run_name=row["entry"], params={"dataset": dataset, "kind": "reference", **evaluation_params},
                                metrics={k: row.get(k) for k in RUN_METRICS},
                                tags={"opinionbench.role": "human-reference", "opinionbench.entry": row["entry"],
                                      RUN_KEY_TAG: key},
                                artifacts={}, used_files=used_data)
            tracker.log_artifacts(written)  # on the parent run
    return (f"MLflow: {new} runs logged to {tracker.uri} (execution {execution}); "
            f"{skipped} unchanged entries already logged")


def _unique(frame: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in frame[column].dropna()}) if column in frame else []
    return ",".join(values) if values else "unknown"
