"""Persona steering: the group described in words, in OpinionQA's `bio` or `portray` style."""

from __future__ import annotations

from opinionbench.steering import steerings
from opinionbench.steering.base import Context, SteeringData
from opinionbench.steering.templates import TemplateError, fill, group_phrases, templates_hash

STYLES = {"bio": "persona_bio.txt", "portray": "persona_portray.txt"}


def phrases(attribute: str, group: str) -> dict[str, str]:
    """bio / portray / label wording of a group (groups.yaml: per-group entry, else the attribute default)."""
    table = group_phrases().get(attribute)
    if table is None:
        raise TemplateError(f"steering/templates/groups.yaml: no wording for attribute {attribute!r}")
    entry = table.get(group) or table.get("default")
    if entry is None:
        raise TemplateError(f"steering/templates/groups.yaml: no wording for {attribute}/{group}")
    return {key: text.format(group=group) for key, text in entry.items()}


@steerings.register("persona")
def context(data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    name = STYLES[data.persona_style]
    words = phrases(attribute, group)
    system = fill(name, bio=words["bio"], portray=words["portray"])
    return Context(system, "people like you", templates_hash(name, "groups.yaml"), (name, "groups.yaml"))
