"""The pydantic models of params.yaml: the one place configuration is parsed and validated.

Each stage validates only the sections it declares in dvc.yaml (`load_params("build")`), so a
typo in one section never stops an unrelated stage, and every error names the exact key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opinionbench.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Unknown keys are errors: a misspelt knob must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    waves_dir: Path = Field(Path("data/sample"), description="directory of W*.sav waves: the sample, or real ATP data")
    waves: list[str] = Field(default_factory=list, description="wave ids to use (e.g. W54); empty = all")
    survey_details: Path | None = Field(
        None, description="optional survey-details.json (wave names, dates, topics) for real ATP waves"
    )

    def wave_files(self) -> list[Path]:
        root = self.waves_dir
        if not root.is_dir():
            raise ConfigError(f"params.yaml: data.waves_dir: {root} is not a directory")
        files = sorted(root.glob("W*.sav"), key=_wave_sort_key)
        if not files:
            raise ConfigError(f"params.yaml: data.waves_dir: no W*.sav files in {root}")
        if self.waves:
            wanted = set(self.waves)
            missing = wanted - {f.stem for f in files}
            if missing:
                raise ConfigError(f"params.yaml: data.waves: no .sav for {sorted(missing)} in {root}")
            files = [f for f in files if f.stem in wanted]
        return files


def _wave_sort_key(path: Path) -> tuple[float, str]:
    try:
        return (float(path.stem[1:]), path.stem)
    except ValueError:
        return (float("inf"), path.stem)


class BuildParams(Section):
    workers: int = Field(2, ge=1, le=64)
    out_dir: Path = Path("data/build")


SECTIONS: dict[str, type[Section]] = {
    "data": DataParams,
    "build": BuildParams,
}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return raw


def _format_error(path: Path, section: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in (section, *first["loc"]))
    got = first.get("input")
    shown = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"{path}: {key}: {first['msg']}{shown}"


def load_section(name: str, path: Path = DEFAULT_PARAMS) -> Section:
    """Validate one section of params.yaml; a bad key raises ConfigError naming `section.key`."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown params section {name!r}")
    raw = _read_yaml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name}: must be a mapping")
    try:
        return SECTIONS[name].model_validate(value)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, name, exc)) from None


def load_params(*names: str, path: Path = DEFAULT_PARAMS) -> tuple[Section, ...]:
    return tuple(load_section(n, path) for n in names)
