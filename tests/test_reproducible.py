"""Same inputs, same outputs: the default `dvc repro` in a fresh copy writes `dvc.lock` byte for byte
as the committed one (and as a second fresh copy does).

Why it matters: an output that differs from run to run (wall time in the predictions' metadata,
timestamps in the Data Docs) gets another hash in `dvc.lock` on every rerun, so every stage
downstream goes stale and the committed hashes can never be checked out again (`dvc checkout`:
"Is your cache up to date?"). Byte-equal locks mean every tracked output is byte-equal.

Cost, and why it is defensible: one default pipeline run (what `make repro` does) when the working
tree is the commit, compared with the committed `dvc.lock` — itself the output of another,
earlier run, on another machine, so two independent runs are compared. Only when the tree has
uncommitted changes (the committed lock then describes other code or params) is a second fresh
copy run and the two compared instead. The weights (data/models) are shared through a symlink,
as a user's cache would be: converting them is not a pipeline output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_pipeline import REPO, _env, _project_files, _run

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]


def _fresh_copy(root: Path) -> Path:
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    models = REPO / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (root / "data" / "models").symlink_to(models, target_is_directory=True)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fresh copy"]):
        _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], root)
    return root


def _reproduce(root: Path) -> Path:
    """`dvc repro` in the copy, running the copy's own code (not the working tree's, which may have
    changed since the copy was made), as a clone would."""
    env = _env() | {"PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, f"dvc repro failed in {root}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return root / "dvc.lock"


def _why_the_committed_lock_is_not_current() -> str | None:
    """None when the working tree is the commit (so its dvc.lock is the one to reproduce)."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    changed = [line[3:] for line in status if not line.startswith("??") or not line[3:].startswith("data/")]
    return f"the working tree differs from the commit ({', '.join(changed[:3])}...)" if changed else None


def _differences(a: Path, b: Path) -> list[str]:
    """Which recorded hashes differ between two dvc.lock files, one line each."""
    def hashes(path: Path) -> dict[tuple[str, str, str], str]:
        out = {}
        for stage, spec in (yaml.safe_load(path.read_text()).get("stages") or {}).items():
            for kind in ("deps", "outs"):
                for entry in spec.get(kind) or []:
                    out[(stage, kind, entry["path"])] = str(entry.get("md5"))
            out[(stage, "params", "")] = str(spec.get("params"))
        return out

    left, right = hashes(a), hashes(b)
    return [f"{stage} {kind} {path}: {left.get((stage, kind, path))} != {right.get((stage, kind, path))}"
            for stage, kind, path in sorted(set(left) | set(right))
            if left.get((stage, kind, path)) != right.get((stage, kind, path))]


def _assert_same(a: Path, b: Path) -> None:
    if a.read_bytes() != b.read_bytes():
        pytest.fail(f"{a} and {b} differ:\n" + "\n".join(_differences(a, b)[:40] or ["(only in layout)"]))


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> tuple[Path, Path | None, str | None]:
    """(first copy, second copy or None, why the committed lock is not current): both copies made
    at once, so that they hold the same files even while the working tree is being edited."""
    reason = _why_the_committed_lock_is_not_current()
    expected = REPO / "dvc.lock"
    first = _fresh_copy(tmp_path_factory.mktemp("fresh-1"))
    second = _fresh_copy(tmp_path_factory.mktemp("fresh-2")) if reason else None
    if reason is None:  # the lock to reproduce, as it was when the copy was made
        shutil.copy2(expected, first.parent / "committed.lock")
    return first, second, reason


@pytest.fixture(scope="module")
def first_lock(copies) -> Path:
    return _reproduce(copies[0])


def test_a_fresh_copy_reproduces_the_committed_dvc_lock(copies, first_lock):
    first, _, reason = copies
    if reason:
        pytest.skip(f"{reason}: its dvc.lock describes other code or params; two fresh copies are compared instead")
    _assert_same(first_lock, first.parent / "committed.lock")


def test_two_fresh_copies_write_the_same_dvc_lock(copies, first_lock):
    _, second, reason = copies
    if second is None:
        pytest.skip("the committed dvc.lock is current: the run above compared two independent runs already")
    _assert_same(first_lock, _reproduce(second))
