"""Wave metadata (dates, topic) from the OpinionQA-XL `survey-details.json`, when one is given."""

from __future__ import annotations

from pathlib import Path

from opinionbench.errors import ConfigError
from opinionbench.io import read_structured


def load_survey_details(path: Path | None) -> dict[str, dict[str, str]]:
    """Wave id (`W52`) → {wave_start, wave_end, topic}; empty when no file is configured."""
    if path is None:
        return {}
    entries = read_structured(path, kind="json", error=ConfigError)
    out = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if not name.startswith("Wave "):
            continue
        out["W" + name.removeprefix("Wave ").strip()] = {
            "wave_start": entry.get("start_date"),
            "wave_end": entry.get("end_date"),
            "topic": entry.get("Topics") or entry.get("concept"),
        }
    return out
