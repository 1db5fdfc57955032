"""The dataset release (stage `release`): the validated dataset in the formats others load.

- `hf`: the Hugging Face `datasets` layout (one parquet per configuration, `questions` and
  `distributions`) with its dataset card (`card`) and Croissant metadata (`croissant`);
- `human_resp`: OpinionQA's `human_resp/<survey>/` layout (`info.csv`, `<ATTRIBUTE>_data.json`),
  which OpinionQA's and the distributional-alignment code read.

The settings type of the `release:` section lives here, beside the code that reads it; config.py
composes it. This module imports nothing heavy, so validating params stays cheap.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from opinionbench.io import DataPath


class ReleaseParams(BaseModel):
    """`release:` of params.yaml: where the validated dataset is read and the release is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt knob is an error, not ignored

    dataset_dir: Path = Field(Path("data/validation/dataset"), description="the validated dataset (stage validate)")
    summary: Path = Field(Path("data/validation/summary.json"), description="validate's summary: counts and "
                          "exclusions, quoted in the dataset card")
    name: str = Field("opinionqa_xl", pattern=r"^[a-z0-9][a-z0-9_-]*$", description="the dataset's name (card, Croissant)")
    version: str = Field("1.0.0", pattern=r"^\d+\.\d+\.\d+$", description="the release's version (semantic)")
    date_published: datetime.date = Field(datetime.date(2026, 12, 4), description="the release's date (card, "
                                          "Croissant); set with `version`, so a rebuild writes the same bytes")
    out_dir: DataPath = Field(Path("data/release/opinionqa_xl"), description="Hugging Face layout + croissant.json")
    human_resp_dir: DataPath = Field(Path("data/release/human_resp"),
                                     description="OpinionQA layout: <survey>/info.csv, <ATTRIBUTE>_data.json")
    attributes: list[str] | None = Field(None, description="attributes exported as <ATTRIBUTE>_data.json; "
                                         "null = every attribute of the dataset")
