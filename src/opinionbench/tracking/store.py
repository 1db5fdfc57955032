"""Where the MLflow store lives: the tracking URI and artifact folder, inside DVC temporary workspaces too.

`dvc exp run --queue` runs each experiment in a temporary copy of the repository
(`.dvc/tmp/exps/...`) without git-ignored files, so a relative SQLite store there would be a
throwaway one. A relative store and artifact folder are therefore anchored at the original
repository (DVC exports it to stages as `DVC_ROOT`), and writers of one SQLite file take turns
(`store_lock`); an MLflow tracking server needs neither.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from opinionbench.errors import OpinionBenchError
from opinionbench.tracking.settings import TrackingParams

SQLITE = "sqlite:///"
# Where `dvc exp run --queue/--temp` makes its temporary workspaces, inside the repository.
DVC_TEMP_WORKSPACES = Path(".dvc", "tmp", "exps")


class TrackingError(OpinionBenchError):
    """The MLflow store cannot be reached or written."""


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
