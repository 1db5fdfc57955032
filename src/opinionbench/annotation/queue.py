"""The review queue of the current build, gathered once for the terminal and for Label Studio.

Why one gatherer: `opinionbench review` (the list) and `opinionbench review export` (the tasks)
must show the same questions. Only questions of the current build count: a questionnaire of a
wave that was not built (the sample's W900 beside a real-data build of W54) is left out and
said so, instead of listing questions nobody can fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from opinionbench.questionnaire.provenance import corrected_path
from opinionbench.questionnaire.review import ReviewEntry, load_reviews, review_queue

AUDIT_COLUMNS = ["qkey", "status", "reason"]


@dataclass
class ReviewQueue:
    questionnaire: pd.DataFrame   # review_queue() rows: qkey, score, status, page, confidence, drift, reviewed, why
    corrected: pd.DataFrame       # the corrected questionnaire rows of the same questions (all columns)
    audit: pd.DataFrame           # the audit's differences: qkey, status, reason, their_question?, reviewed
    entries: list[ReviewEntry]
    built: set[str] | None        # qkeys of the current build (None: no build yet)
    notes: list[str] = field(default_factory=list)

    def flagged(self) -> pd.DataFrame:
        """Questionnaire rows with something to check (a reason), not yet reviewed first."""
        return self.questionnaire[self.questionnaire["why"] != "-"]


def gather(questionnaire_out: Path, pdfs: dict[str, Path], reviews: Path | None, audit_dir: Path,
           build_questions: Path) -> ReviewQueue:
    """The queue from the corrected questionnaires, the audit's review_queue.csv and the reviews file."""
    entries = load_reviews(reviews)
    reviewed = {e.qkey for e in entries}
    notes: list[str] = []
    built = None
    if Path(build_questions).exists():
        built = set(pd.read_parquet(build_questions, columns=["qkey"])["qkey"])
    else:
        notes.append(f"{build_questions}: not found (run `dvc repro build`); every corrected questionnaire listed")
    frames = []
    for wave, _pdf in pdfs.items():
        path = corrected_path(questionnaire_out, wave)
        if not path.exists():
            notes.append(f"{path}: not found, {wave} skipped (run `dvc repro correct@{wave}`)")
            continue
        corrected = pd.read_parquet(path)
        if built is not None and not set(corrected["qkey"]) & built:
            notes.append(f"{wave}: questionnaire not part of the current build ({build_questions}); skipped")
            continue
        frames.append(corrected if built is None else corrected[corrected["qkey"].isin(built)])
    corrected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["qkey", "status"])
    queue = review_queue(corrected, reviewed) if frames else pd.DataFrame(
        columns=["qkey", "score", "status", "page", "confidence", "drift", "reviewed", "why"])
    return ReviewQueue(queue, corrected, _audit(Path(audit_dir), reviewed), entries, built, notes)


def _audit(audit_dir: Path, reviewed: set[str]) -> pd.DataFrame:
    """The audit's differences (empty when no release was audited): qkey, status, reason,
    wording_similarity, our_question, their_question, reviewed. Not filtered by the build: a
    question the release has and our build lost is exactly what needs a look."""
    path = audit_dir / "review_queue.csv"
    empty = pd.DataFrame(columns=AUDIT_COLUMNS + ["reviewed"])
    if not path.exists() or path.stat().st_size == 0:
        return empty
    queue = pd.read_csv(path)
    if queue.empty:
        return empty
    queue = queue.assign(reviewed=queue["qkey"].isin(reviewed))
    return queue.sort_values("reviewed", kind="stable").reset_index(drop=True)
