"""Atomic writes and one-line reads: a killed stage never leaves a half-written output that
looks complete, and an unreadable input file is one line naming the file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import yaml
from pydantic import AfterValidator, ValidationInfo

from opinionbench.errors import OpinionBenchError


class InputFileError(OpinionBenchError):
    """A JSON/YAML input file is missing or not parseable."""


def atomic_path(path: Path):
    """Temp file in the same directory, renamed over `path` on success (same filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make outputs unreadable to other users
    return Path(tmp)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp)` on a temp file beside `path`, then rename it over `path`."""
    tmp = atomic_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(obj: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"))


def write_text(text: str, path: Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def read_structured(path: Path, *, kind: str = "auto", error: type[OpinionBenchError] = InputFileError) -> Any:
    """Parse a JSON or YAML file (by suffix unless `kind` says); a failure raises `error` in one line."""
    path = Path(path)
    kind = kind if kind != "auto" else ("json" if path.suffix == ".json" else "yaml")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text) if kind == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: not valid {kind.upper()} ({str(exc).splitlines()[0]})") from None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (model weights, PDFs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside_data_dir(value: Path, info: ValidationInfo) -> Path:
    """Outputs and caches stay under the project's `data/` directory.

    Why: stages write, replace and resume files at these paths; a params file (perhaps someone
    else's) must not be able to make them write over files elsewhere (`../../.ssh`, `/etc`). The
    check is lexical (`..` and absolute paths), so a symlink the user puts inside data/ is their
    explicit choice. The data directory is `data/` beside the params file or in the working
    directory the stage runs in (relative paths resolve against the working directory).
    Read-only inputs the user opts into (`data.waves_dir`, other benchmarks) are plain `Path`s.
    """
    params_dir = Path((info.context or {}).get("params_dir", Path.cwd()))
    candidate = Path(os.path.abspath(value))
    for data_dir in {Path(os.path.abspath(params_dir / "data")), Path(os.path.abspath("data"))}:
        if candidate == data_dir or data_dir in candidate.parents:
            return value
    raise ValueError(f"path {str(value)!r} is outside the data directory ({os.path.abspath('data')})")


# An output/cache path from params.yaml: must resolve inside the project's data/ directory.
DataPath = Annotated[Path, AfterValidator(_inside_data_dir)]
