"""Prompt templates are files (steering/templates/*.txt); their hash goes with every prediction."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

import yaml

from opinionbench.errors import OpinionBenchError

PACKAGE = "opinionbench.steering"


class TemplateError(OpinionBenchError):
    """A prompt template is missing or refers to a field that is not provided."""


@cache
def template(name: str) -> str:
    path = resources.files(PACKAGE).joinpath("templates", name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"steering/templates/{name}: template file not found") from None


def fill(name: str, **fields: object) -> str:
    try:
        return template(name).format(**fields).strip()
    except KeyError as exc:
        raise TemplateError(f"steering/templates/{name}: field {exc} is not provided") from None


@cache  # `template` is cached too, so a name list has one hash per process; the runner asks per row
def templates_hash(*names: str) -> str:
    """Short sha256 over the named templates' bytes (and names): changes when any of them is edited."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0" + template(name).encode() + b"\0")
    return h.hexdigest()[:16]


@cache
def group_phrases() -> dict:
    return yaml.safe_load(template("groups.yaml"))
