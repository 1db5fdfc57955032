"""An artifact root relative to the SQLite store: `opinionbench:<path>` locations, resolved when read.

Why: MLflow records a local artifact location as an absolute `file://` URI when an experiment is
created, so a moved or copied checkout (`mlflow.db` beside `mlartifacts/`) would link every run
to the old place. Experiments created here get `opinionbench:<artifact root relative to the
database's folder>` instead, and this MLflow artifact-repository plug-in (entry point
`mlflow.artifact_repository` in pyproject.toml) resolves it against the store it is read from,
whoever reads it: the pipeline, `mlflow ui`, or any MLflow client where opinionbench is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

from opinionbench.tracking.store import sqlite_path

SCHEME = "opinionbench"


def store_relative_location(artifact_root: Path, store: Path) -> str:
    """The `opinionbench:` location of `artifact_root` for experiments of the SQLite file `store`."""
    relative = os.path.relpath(Path(artifact_root).resolve(), Path(store).resolve().parent)
    return f"{SCHEME}:{Path(relative).as_posix()}"


def resolve(artifact_uri: str, tracking_uri: str) -> Path:
    """The folder an `opinionbench:` location names, for the store at `tracking_uri`."""
    store = sqlite_path(tracking_uri)
    if store is None:
        raise MlflowException(f"{artifact_uri}: an {SCHEME}: artifact location is relative to a SQLite store, "
                              f"and the tracking URI is {tracking_uri}")
    return (store.parent / artifact_uri[len(SCHEME) + 1:]).resolve()


class StoreRelativeArtifactRepository(LocalArtifactRepository):
    """MLflow's local artifact repository, at the folder an `opinionbench:` location resolves to."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        import mlflow

        folder = resolve(artifact_uri, tracking_uri or mlflow.get_tracking_uri())
        super().__init__(folder.as_uri(), tracking_uri, registry_uri)
