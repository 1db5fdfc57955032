"""Wave metadata (dates, topic) from the OpinionQA-XL `survey-details.json`, when one is given."""

from __future__ import annotations

import json
from pathlib import Path

from opinionbench.errors import ConfigError


def load_survey_details(path: Path | None) -> dict[str, dict[str, str]]:
    """Wave id (`W52`) → {wave_start, wave_end, topic}; empty when no file is configured."""
    if path is None:
        return {}
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read survey details ({exc})") from None
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
