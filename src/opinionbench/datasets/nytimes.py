"""NYT book opinions (distributional-alignment release): how likely each group is to read a book.

`nytimes/data.json` maps a book title to its Likert options, genre, summary and the answer
counts of Democrat, Republican, Male and Female annotators. The question shown to a model is the
book's title, genre and summary followed by the task question, as in the release's prompts.
Overall = Democrat + Republican (every annotator declared one of the two).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from opinionbench.datasets import importers
from opinionbench.datasets.common import DatasetImportError, ImportedDataset, QuestionRecord, build_tables, read_json
from opinionbench.datasets.human import human_annotations

GROUPS = {"Democrat": "POLPARTY", "Republican": "POLPARTY", "Male": "SEX", "Female": "SEX"}
TASK = "Given the information about this book, how likely are you to read it?"


def book_qkey(title: str) -> str:
    """Stable, readable key: slug of the title plus a short hash (titles differ only in case sometimes)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")[:40]
    return f"NYT_{slug}_{hashlib.sha1(title.encode()).hexdigest()[:6]}"


def _ordinal(options: list[str]) -> list[float] | None:
    numbers = [re.match(r"\s*(\d+(?:\.\d+)?)\s*:", o) for o in options]
    return [float(m.group(1)) for m in numbers] if all(numbers) else None


@importers.register("nytimes")
def import_nytimes(root: Path) -> ImportedDataset:
    path = root / "nytimes" / "data.json"
    data = read_json(path)
    similar_path = root / "nytimes" / "question_similarity_top10.json"
    similar = read_json(similar_path) if similar_path.exists() else {}
    keys = {title: book_qkey(title) for title in data}
    records = []
    for title, entry in data.items():
        if not isinstance(entry, dict) or "MC_options" not in entry:
            raise DatasetImportError(f"{path}: {title}: lacks MC_options")
        options = [str(o) for o in entry["MC_options"]]
        question = (f"Book Title: {title}\nBook Genre: {entry.get('genre', '')}\n"
                    f"Book Summary: {entry.get('summary', '')}\n{TASK}")
        counts = {(attribute, group): entry[group] for group, attribute in GROUPS.items() if group in entry}
        records.append(QuestionRecord(
            qkey=keys[title], question=question, all_options=options, counts=counts, ordinal=_ordinal(options),
            survey="NYT_books_2024", topic=str(entry.get("genre", "")),
            similar_qkeys=[keys[t] for t in similar.get(title, []) if t in keys],
        ))
    questions, distributions = build_tables(records, str(path), add_overall_from="POLPARTY")
    return ImportedDataset(name="nytimes", questions=questions, distributions=distributions,
                           human_annotations=human_annotations(root, "NYT"), source=str(path))
