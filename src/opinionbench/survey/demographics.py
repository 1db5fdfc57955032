"""Harmonise each wave's F_* profile columns into the 12 OpinionQA attributes.

The mapping is data (resources/demographics.yaml), not code: waves differ in column names
(`_FINAL`, `_TYPOLOGY`, none) and in codes, but the value labels are stable, so the file maps
labels to groups and this module only applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Mapping

import numpy as np
import pandas as pd
import yaml

from opinionbench.errors import SurveyError

NOT_IN_GROUP = -1


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    groups: list[str]
    sources: list[dict]


@dataclass(frozen=True)
class HarmonisedAttribute:
    """Respondent → group index (NOT_IN_GROUP where refused or not an OpinionQA group)."""

    name: str
    groups: list[str]
    column: str
    codes: np.ndarray


def normalise_label(label: str) -> str:
    text = str(label).replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", "").replace("\u201d", "")
    return re.sub(r"\s+", " ", text.strip().strip('"').strip()).lower()


@lru_cache(maxsize=1)
def _mapping() -> dict:
    text = resources.files("opinionbench.resources").joinpath("demographics.yaml").read_text()
    return yaml.safe_load(text)


def attribute_specs() -> list[AttributeSpec]:
    data = _mapping()["attributes"]
    return [AttributeSpec(name, spec["groups_order"], spec["sources"]) for name, spec in data.items()]


def attribute_groups() -> dict[str, list[str]]:
    """The OpinionQA attributes and their groups, in metadata.csv order."""
    return {spec.name: list(spec.groups) for spec in attribute_specs()}


def _missing_pattern() -> re.Pattern[str]:
    return re.compile(_mapping()["missing_pattern"], re.IGNORECASE)


def _code_to_group(
    source_name: str,
    column: str,
    labels: Mapping[float, str],
    table: Mapping[str, str | None],
    groups: list[str],
) -> dict[float, int]:
    missing = _missing_pattern()
    normalised_table = {normalise_label(k): v for k, v in table.items()}
    out: dict[float, int] = {}
    for code, label in labels.items():
        key = normalise_label(label)
        if key in normalised_table:
            group = normalised_table[key]
            out[float(code)] = NOT_IN_GROUP if group is None else groups.index(group)
        elif missing.search(key):
            out[float(code)] = NOT_IN_GROUP
        else:
            raise SurveyError(
                f"{source_name}: unknown demographic code {code:g} ({label!r}) in {column}; "
                f"add it to resources/demographics.yaml"
            )
    return out


def harmonise(
    source_name: str,
    frame: pd.DataFrame,
    value_labels: Mapping[str, Mapping[float, str]],
) -> list[HarmonisedAttribute]:
    """Map the wave's profile columns to OpinionQA groups; attributes the wave lacks are omitted."""
    result = []
    for spec in attribute_specs():
        for source in spec.sources:
            column = next((c for c in source["columns"] if c in frame.columns), None)
            if column is None:
                continue
            mapping = _code_to_group(source_name, column, value_labels.get(column) or {}, source["groups"], spec.groups)
            values = frame[column].to_numpy(dtype=float)
            codes = _apply(source_name, column, values, mapping)
            hisp_col = next((c for c in source.get("hispanic_from", []) if c in frame.columns), None)
            if hisp_col is not None:
                hisp_labels = value_labels.get(hisp_col) or {}
                yes = [float(c) for c, t in hisp_labels.items() if normalise_label(t) == "yes"]
                codes = np.where(np.isin(frame[hisp_col].to_numpy(dtype=float), yes), spec.groups.index("Hispanic"), codes)
            result.append(HarmonisedAttribute(spec.name, list(spec.groups), column, codes.astype(np.int16)))
            break
    return result


def _apply(source_name: str, column: str, values: np.ndarray, mapping: dict[float, int]) -> np.ndarray:
    present = np.unique(values[~np.isnan(values)])
    unknown = [v for v in present if float(v) not in mapping]
    if unknown:
        raise SurveyError(
            f"{source_name}: unknown demographic code {unknown[0]:g} in {column} (no value label); "
            f"fix the file or add the code to resources/demographics.yaml"
        )
    codes = np.full(values.shape, NOT_IN_GROUP, dtype=np.int16)
    for code, group in mapping.items():
        codes[values == code] = group
    return codes
