"""The dataset card (`README.md`): the YAML header `datasets` and the Hub read, and the text people read.

The header's `configs` name the parquet files (so `load_dataset(<dir>, "questions")` needs no
loading script) and its `dataset_info` gives each configuration's features and sizes, written
from the same Arrow schema as the files (by `datasets.Features`, so the spelling is the library's).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import pandas as pd
import yaml

from opinionbench.release.hf import SPLIT, ConfigFile
from opinionbench.release.schema import columns

PEW_TERMS = "https://www.pewresearch.org/about/terms-and-conditions/"
PRETTY_NAME = "OpinionQA-XL, rebuilt from Pew American Trends Panel microdata"


@dataclass(frozen=True)
class ReleaseFacts:
    """What the card and the Croissant metadata say about one release."""

    name: str
    version: str
    date_published: datetime.date
    files: list[ConfigFile]
    waves: list[str]
    attributes: list[str]
    questions: int
    cells: int
    years: tuple[int, int] | None  # first and last year the waves were fielded, when the details give them
    text_sources: dict[str, int]
    validation: dict = field(default_factory=dict)  # validate's summary.json (counts, exclusions)


def facts(name: str, version: str, date_published: datetime.date, files: list[ConfigFile],
          questions: pd.DataFrame, distributions: pd.DataFrame, validation: dict) -> ReleaseFacts:
    # Field dates are free text in the survey details ("March 9, 2014", "April 29"): only their years are compared.
    years = sorted({int(y) for v in [*questions["wave_start"].tolist(), *questions["wave_end"].tolist()]
                    if isinstance(v, str) for y in re.findall(r"\b(?:19|20)\d{2}\b", v)})
    return ReleaseFacts(
        name=name, version=version, date_published=date_published, files=files,
        waves=sorted(set(questions["wave"].tolist()), key=lambda w: (len(w), w)),
        attributes=sorted(set(distributions["attribute"].tolist()) - {"Overall"}),
        questions=len(questions), cells=len(distributions),
        years=(years[0], years[-1]) if years else None,
        text_sources={str(k): int(v) for k, v in questions["text_source"].value_counts().sort_index().items()},
        validation=validation,
    )


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket for the largest configuration."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < limit:
            return label
    return "10M<n<100M"


def header(f: ReleaseFacts) -> dict:
    from datasets import Features  # the library's own spelling of features in YAML

    configs, infos = [], []
    for cf in f.files:
        configs.append({"config_name": cf.config, "data_files": [{"split": SPLIT, "path": cf.path}],
                        **({"default": True} if cf.config == "questions" else {})})
        infos.append({"config_name": cf.config,
                      "features": Features.from_arrow_schema(cf.schema)._to_yaml_list(),
                      "splits": [{"name": SPLIT, "num_bytes": cf.num_bytes, "num_examples": cf.rows}],
                      "download_size": cf.size, "dataset_size": cf.num_bytes})
    return {
        "pretty_name": PRETTY_NAME,
        "license": "other",
        "license_name": "pew-research-center-terms-of-use",
        "license_link": PEW_TERMS,
        "language": ["en"],
        "size_categories": [size_category(max(cf.rows for cf in f.files))],
        "task_categories": ["question-answering"],
        "tags": ["survey", "public-opinion", "pew-research-center", "american-trends-panel", "opinionqa",
                 "distributional-alignment", "llm-evaluation"],
        "configs": configs,
        "dataset_info": infos,
    }


def _columns_table(config: str) -> str:
    rows = [f"| `{c.name}` | `{c.type}` | {c.description} |" for c in columns(config)]
    return "\n".join(["| column | type | meaning |", "| --- | --- | --- |", *rows])


def render(f: ReleaseFacts) -> str:
    """The whole README.md: YAML front matter, then the card's sections."""
    v = f.validation
    fielded = "" if f.years is None else f" fielded {f.years[0]}" + ("" if f.years[0] == f.years[1] else f"–{f.years[1]}")
    excluded = v.get("questions_excluded_by_reason") or {}
    excluded_text = ", ".join(f"{n} {reason}" for reason, n in excluded.items()) or "none"
    waves = ", ".join(f.waves) if len(f.waves) <= 20 else f"{', '.join(f.waves[:10])}, … {', '.join(f.waves[-5:])}"
    sources = ", ".join(f"{n} {s}" for s, n in f.text_sources.items())
    front = yaml.safe_dump(header(f), sort_keys=False, allow_unicode=True, width=1000)
    return f"""---
{front}---

# {PRETTY_NAME}

`{f.name}` {f.version} ({f.date_published.isoformat()}): {f.questions:,} survey questions from {len(f.waves)} waves of the Pew Research
Center's American Trends Panel (ATP){fielded}, each with the weighted
distribution of answers of the U.S. public and of {len(f.attributes)} demographic attributes' groups
({", ".join(f.attributes)}): {f.cells:,} (question, attribute, group) cells. Like OpinionQA and
OpinionQA-XL, whose questions it covers, it is computed from the respondent-level `.sav` files, here
by an open pipeline, so every number can be traced to the microdata and rebuilt.

## Loading

```python
from datasets import load_dataset

questions = load_dataset("<this directory or Hub id>", "questions", split="{SPLIT}")
distributions = load_dataset("<this directory or Hub id>", "distributions", split="{SPLIT}")
```

`distributions.probs` is aligned with `questions.options` of the same `qkey`. The Croissant metadata
(`croissant.json`) describes the same files for `mlcroissant` and dataset search engines. An export
in OpinionQA's `human_resp/<survey>/` layout (`info.csv`, `<ATTRIBUTE>_data.json`) is written beside
this directory by the same pipeline, for OpinionQA's and the distributional-alignment code.

## Configurations

### `questions` ({f.files[0].rows:,} rows)

{_columns_table("questions")}

### `distributions` ({f.files[1].rows:,} rows)

{_columns_table("distributions")}

## How it was built

1. **Microdata.** Each ATP wave's `.sav` file (waves {waves}) is read with its value labels; its
   closed questions become `questions` rows (options in codebook order; refused, no answer and
   volunteered don't-know kept apart as `refusal_options`). Wording: {sources} (`text_source`).
2. **Distributions.** For the public (`Overall`) and each group of each harmonised demographic
   attribute, the answers are tallied with the wave's survey weight (`weight_column`): `probs` over
   the substantive options, `refusal_rate`, the unweighted `n` and the Kish effective `n_eff`.
3. **Validation.** Great Expectations suites (reviewed like code) check wordings, options,
   probabilities and effective sizes; questions that fail a reviewed rule are excluded and counted.
   This release: {v.get("questions_built", f.questions):,} questions built, {v.get("questions_validated", f.questions):,}
   kept; excluded: {excluded_text}; {v.get("cells_dropped_low_n_eff", 0):,} cells dropped for an effective
   sample size below the threshold.
4. **Release.** The validated tables are written here by the pipeline's `release` stage
   (`dvc repro release`), with this card and the Croissant metadata; the DVC lock of the build
   records the hash of every input and output.

## License and terms of use

The question wordings and the answer distributions are derived from Pew Research Center American
Trends Panel data. **Pew Research Center's terms of use apply** ({PEW_TERMS}): credit the Pew
Research Center as the source of the data; Pew Research Center bears no responsibility for the
analyses or interpretations of the data presented here. The respondent-level microdata are not
redistributed here: obtain them from Pew Research Center. Check Pew's current terms before
redistributing this release; the pipeline's code is licensed separately from the data.

## Citation

Please cite the Pew Research Center American Trends Panel as the data source, and the works this
benchmark rebuilds:

```bibtex
@inproceedings{{santurkar2023opinions,
  title     = {{Whose Opinions Do Language Models Reflect?}},
  author    = {{Santurkar, Shibani and Durmus, Esin and Ladhak, Faisal and Lee, Cinoo and Liang, Percy and Hashimoto, Tatsunori}},
  booktitle = {{International Conference on Machine Learning (ICML)}},
  year      = {{2023}}
}}
@misc{{meister2024distributional,
  title  = {{Benchmarking Distributional Alignment of Large Language Models}},
  author = {{Meister, Nicole and Guestrin, Carlos and Hashimoto, Tatsunori}},
  year   = {{2024}},
  eprint = {{2411.05403}},
  archivePrefix = {{arXiv}}
}}
```

OpinionQA-XL's question set was released by the authors of *Align Via Actions*; this release
recomputes its questions and distributions from the microdata.
"""
