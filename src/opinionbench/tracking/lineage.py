"""Lineage: which code and data made a run (git commit, `dvc.lock` hashes, md5 of the files read)."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

from opinionbench.io import InputFileError, read_structured


def git_output(*args: str, cwd: Path = Path("."), timeout: float = 30) -> str | None:
    """`git ARGS` run in `cwd`: its output, or None where git is missing, fails or is not a checkout
    (lineage is then recorded as unknown, never an error)."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_lineage(cwd: Path = Path(".")) -> dict[str, str]:
    """`git.commit`, `git.dirty` (and MLflow's own source-version tag), plus the DVC experiment's name."""
    commit = git_output("rev-parse", "HEAD", cwd=cwd)
    status = git_output("status", "--porcelain", "--untracked-files=no", cwd=cwd)
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
