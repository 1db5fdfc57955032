"""The locked Python environment a run used: the lock's hash and the installed versions that matter.

Why: the same commit gives the same numbers only in the same environment. `requirements.lock`
(pip-compile, `make lock`) pins every dependency; `scripts/setup.sh` installs exactly it. A run
records the lock's sha256 and the versions of the packages that shape its numbers, and whether
the installed versions are the locked ones, so a number from a drifted environment says so.
"""

from __future__ import annotations

import hashlib
import platform
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

LOCK_NAME = "requirements.lock"
# The packages whose versions shape the numbers (models, metrics, tables, tracking), recorded by name.
KEY_PACKAGES = ("torch", "transformers", "mlflow", "dvc", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn",
                "datasets", "great-expectations", "llama-cpp-python")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    """PEP 503 name: `Scikit_Learn` and `scikit-learn` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """normalised name -> pinned version of every `name==version` line of a pip-compile lock."""
    pins: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def find_lock(start: Path | None = None) -> Path | None:
    """The project's lock: in the working directory (stages run in the repo root) or above this
    source file (an editable install); None for a package installed without its repository."""
    candidates = [Path(start or Path.cwd()) / LOCK_NAME, Path(__file__).resolve().parents[2] / LOCK_NAME]
    return next((p for p in candidates if p.is_file()), None)


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def differences(pins: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """name -> {locked, installed} for every locked package installed at another version (or missing)."""
    out = {}
    for name, locked in sorted(pins.items()):
        installed = installed_version(name)
        if installed != locked:
            out[name] = {"locked": locked, "installed": installed}
    return out


@lru_cache(maxsize=4)
def _locked_environment(lock: Path | None) -> dict:
    pins = read_lock(lock) if lock else {}
    drift = differences(pins) if pins else {}
    return {
        "lock_file": str(lock) if lock else None,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock else None,
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "packages": {name: installed_version(name) for name in KEY_PACKAGES},
        "matches_lock": bool(pins) and not drift,
        "lock_differences": drift,
    }


def locked_environment(lock: Path | None = None) -> dict:
    """What to record with a run: `lock_sha256` (None without a lock), `python`, `platform`,
    `packages` (installed versions of KEY_PACKAGES), `matches_lock` and `lock_differences`
    (locked packages installed at another version). `lock`: default the project's (find_lock); a
    path that does not exist records no lock. Computed once per process."""
    path = find_lock() if lock is None else Path(lock) if Path(lock).is_file() else None
    return dict(_locked_environment(path))


def environment_tags(env: dict | None = None) -> dict[str, str]:
    """The same as flat string tags (`env.lock_sha256`, `env.torch`, ...) for MLflow or a metadata row."""
    env = env if env is not None else locked_environment()
    tags = {"env.lock_sha256": str(env["lock_sha256"]), "env.python": env["python"],
            "env.matches_lock": str(env["matches_lock"]).lower()}
    tags |= {f"env.{name}": str(version) for name, version in env["packages"].items()}
    if env["lock_differences"]:
        tags["env.lock_differences"] = ", ".join(
            f"{n} {d['installed']} (locked {d['locked']})" for n, d in env["lock_differences"].items())[:5000]
    return tags
