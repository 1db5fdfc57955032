"""The MLflow adapter: one pipeline execution's experiments, parent and child runs, logged models.

Layout: one experiment per dataset (`<prefix>/<dataset>`), one parent run per pipeline
execution (per dataset), one child run per leaderboard entry with its params, metrics, scrubbed
artifacts, the dataset logged as an MLflow input (with its digest) and lineage tags. A SQLite
store's experiments keep their artifacts in `tracking.artifact_root` under a location relative
to the database (`tracking/artifacts.py`), so a moved checkout keeps its artifacts.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from opinionbench.environment import environment_tags
from opinionbench.tracking.lineage import dvc_lock_hashes, file_md5s, git_lineage
from opinionbench.tracking.secrets import redact, redacted_frame, scrubbed_copy, secret_values
from opinionbench.tracking.settings import TrackingParams
from opinionbench.tracking.store import TrackingError, artifact_root, sqlite_path, tracking_uri

os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

# MLflow 3's UI opens an experiment on its GenAI overview (traces) unless its kind says otherwise;
# these runs are model evaluations, compared in the runs table.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
RUN_KEY_TAG = "opinionbench.run_key"
SCHEMA_SAMPLE_ROWS = 1000


def _sampled_schema_dataset(mlflow: Any, data: pd.DataFrame, source: str, name: str) -> Any:
    """MLflow's pandas dataset of `data`, its schema inferred from a sample of rows.

    MLflow infers a schema row by row (minutes for the 640k list-valued cells of the real
    build); the column types, and so the schema, are those of any thousand rows. Digest and
    profile stay those of the whole frame.
    """
    from mlflow.data.pandas_dataset import PandasDataset

    class SampledSchemaDataset(PandasDataset):
        @cached_property
        def schema(self) -> Any:
            return mlflow.models.infer_signature(self.df.head(SCHEMA_SAMPLE_ROWS)).inputs

    whole = mlflow.data.from_pandas(data, source=source, name=name)
    return SampledSchemaDataset(df=data, source=whole.source, name=name, digest=whole.digest)


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
        # Local artifacts for a SQLite store (MLflow's default, ./mlruns in the cwd, would be inside a
        # queued experiment's temporary workspace); a server keeps its own artifact store.
        store = sqlite_path(self.uri)
        self.artifact_location: str | None = None
        if store is not None:
            from opinionbench.tracking.artifacts import store_relative_location

            self.artifact_location = store_relative_location(artifact_root(params), store)
        self.secrets = secret_values(names=secret_names)
        self.lineage = git_lineage()
        self._experiment: str | None = None
        self._inputs: dict[int, tuple[pd.DataFrame, Any]] = {}
        self._models: dict[tuple[str, str, str], str] = {}
        try:
            mlflow.set_tracking_uri(self.uri)
        except Exception as exc:
            raise TrackingError(f"tracking URI {redact(self.uri, self.secrets)}: {exc}") from None

    def _experiment_id(self, dataset: str) -> str:
        name = f"{self.params.experiment_prefix}/{dataset}"
        client = self.mlflow.MlflowClient()
        try:
            found = client.get_experiment_by_name(name)
            if found is not None:
                if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
                return found.experiment_id
            return self._create_experiment(client, name, dataset)
        except Exception as exc:
            raise TrackingError(f"MLflow store {redact(self.uri, self.secrets)}: cannot open experiment {name}: "
                                f"{str(exc).splitlines()[0]}") from None

    def _create_experiment(self, client: Any, name: str, dataset: str) -> str:
        """Create the experiment, or take the one a parallel experiment's evaluate created meanwhile
        (two queued experiments against one tracking server both find it missing, then both create)."""
        try:
            return client.create_experiment(name, artifact_location=self.artifact_location,
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
        name = re.sub(r"[/:.%\"']", "-", name)  # MLflow's model names refuse these (gpt-3.5-turbo-0125)
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
                model_id: str | None = None, table: pd.DataFrame | None = None,
                inputs: list[tuple[pd.DataFrame, str, str, str]] | None = None) -> str:
        """A child run of the active parent: params, metrics, tags, scrubbed artifacts, dataset input.

        `artifacts` maps a local file to the artifact folder it is logged under; `model_id` (a
        logged model) links the run and its metrics to that model; `table` is logged with
        `mlflow.log_table` as `questions.json` (string cells redacted); `inputs`: more dataset
        inputs as (frame, source, name, context), e.g. an imported run's source files.
        """
        mlflow = self.mlflow
        lineage = {**self.lineage, **dvc_lock_hashes(used_files or []), **file_md5s(used_files or [])}
        with mlflow.start_run(experiment_id=self._experiment, run_name=run_name, nested=True,
                              tags=self._clean({**lineage, **environment_tags(), **tags,
                                                "opinionbench.execution": self.execution})) as run:
            mlflow.log_params(self._clean(params))
            finite = {k: float(v) for k, v in metrics.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and pd.notna(v)}
            if finite:
                mlflow.log_metrics(finite, model_id=model_id)
            if model_id:
                from mlflow.entities import LoggedModelInput

                mlflow.MlflowClient().log_inputs(run.info.run_id, models=[LoggedModelInput(model_id)])
            if table is not None and len(table):
                mlflow.log_table(data=redacted_frame(table, self.secrets), artifact_file="questions.json")
            if data is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dataset = self._input(data, data_source, data_name)
                    mlflow.log_input(dataset, context="evaluation")
                mlflow.set_tag("dataset.digest", dataset.digest)
            for frame, source, name, context in inputs or []:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    extra = mlflow.data.from_pandas(redacted_frame(frame, self.secrets),
                                                    source=redact(source, self.secrets), name=name)
                    mlflow.log_input(extra, context=context)
            self.log_artifacts(artifacts)
            return run.info.run_id

    def _input(self, data: pd.DataFrame, source: Path | None, name: str) -> Any:
        """The MLflow dataset of `data`, made once per frame (every run of a dataset logs the same frame)."""
        cached = self._inputs.get(id(data))
        if cached is None or cached[0] is not data:
            dataset = _sampled_schema_dataset(self.mlflow, data, str(source or ""), name)
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
                    self.mlflow.log_artifact(str(scrubbed_copy(Path(path), folder, self.secrets)),
                                             artifact_path=artifact_dir)
