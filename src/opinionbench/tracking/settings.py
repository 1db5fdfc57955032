"""The `tracking:` section of params.yaml, owned here beside the code that reads it (config.py composes it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TrackingParams(BaseModel):
    """MLflow: SQLite store in the repo by default; MLFLOW_TRACKING_URI overrides `tracking_uri`."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt knob is an error, not ignored

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_root: Path = Field(Path("mlartifacts"), description="artifact store for experiments created here")
    experiment_prefix: str = "opinionbench"
    log_predictions: bool = Field(True, description="attach each run's predictions parquet as an artifact")
    table_rows: int = Field(2000, ge=0, le=1_000_000, description="rows of each run's per-question table "
                            "(mlflow.log_table, questions.json): question, group, predicted vs human, TV, reply")
