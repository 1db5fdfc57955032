"""Audit of a published question set (OpinionQA-XL's `{wave: {qcode: {question, options}}}`)
against the `.sav` codebooks: one row per released question, every one accounted for.

Statuses, checked in this order (the first that applies wins; `reason` says why in words):
- `missing`: the release's question is not a closed question of our microdata (wave file absent,
  no such column, or the codebook skips the column, with the codebook's reason);
- `options_differ`: the answer options differ beyond "Refused": a label only one side has, with
  how many respondents chose it (an answer the release lacks although people gave it is an answer
  its loader lost, e.g. one labelled "None");
- `options_unobserved`: the release lacks only options nobody chose (its option lists were taken
  from the answers seen in the data);
- `label_truncated`: our wording is the start of the release's, which goes on (SPSS variable
  labels end at a length limit; some labels are a stem the questionnaire completes);
- `wording_differs`: the wording agrees less than `similar` (rapidfuzz ratio 0-100); the reason
  says whether the release's text is a part of ours (an item or a stem only) or not (our label
  may name another item);
- `matched`.
Bracketed instructions the release kept ("[RANDOMIZE RESPONSE OPTIONS]") are not wording.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
from rapidfuzz import fuzz
from tqdm import tqdm

from opinionbench.audit.sav import WaveCodebook, answer_counts, read_codebook, wave_files
from opinionbench.errors import OpinionBenchError
from opinionbench.survey.answer_classes import normalise

STATUSES = ("matched", "missing", "options_differ", "options_unobserved", "label_truncated", "wording_differs")
COLUMNS = ["qkey", "wave", "qcode", "status", "reason", "wording_similarity", "our_question", "their_question",
           "our_options", "their_options", "options_only_ours", "options_only_theirs"]
SIMILAR = 90.0
_BRACKETED = re.compile(r"\[([^\]]*)\]")


class AuditError(OpinionBenchError):
    """The release file is not the expected `{wave: {qcode: {question, options}}}` JSON."""


def load_release(path: Path) -> dict[str, dict[str, dict]]:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AuditError(f"{path}: not a readable JSON release ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise AuditError(f"{path}: expected {{wave: {{qcode: {{question, options}}}}}}")
    for wave, questions in raw.items():
        for qcode, item in questions.items():
            if not isinstance(item, dict) or "question" not in item or not isinstance(item.get("options"), list):
                raise AuditError(f"{path}: {wave}/{qcode}: expected an object with `question` and an `options` list")
    return raw


def _unbracket(match: re.Match) -> str:
    """`[RANDOMIZE RESPONSE OPTIONS]` is an instruction (dropped); `[your state's]` is wording (kept)."""
    inside = match.group(1)
    letters = [c for c in inside if c.isalpha()]
    return " " if letters and sum(c.isupper() for c in letters) / len(letters) > 0.8 else inside


def wording(text: str) -> str:
    """Wording as compared: bracketed instructions dropped, case/quotes/spaces folded."""
    return normalise(_BRACKETED.sub(_unbracket, str(text))).strip(" .…")


def _ends_with_options(ours: str, theirs: str, options: list[str]) -> bool:
    """The release's text goes on past ours with the answer options (OCR kept the answer list)."""
    tail = theirs[max(0, len(ours) - 5):]
    named = [o for o in (normalise(x) for x in options) if len(o) > 2 and o in tail]
    return len(options) > 1 and len(named) >= max(2, len(options) // 2)


def _is_label(option) -> bool:
    return option is not None and not (isinstance(option, float) and math.isnan(option)) and str(option) != "nan"


def _truncated(ours: str, theirs: str) -> bool:
    """Ours is a cut-off start of theirs: all but our last (possibly cut) word begins theirs."""
    if len(theirs) <= len(ours) + 3 or len(ours) < 20:
        return False
    head = ours.rsplit(" ", 1)[0]
    return fuzz.ratio(head, theirs[: len(head)]) >= 95


def compare(qkey: str, wave: str, qcode: str, item: dict, entry, counts: dict[str, int]) -> dict:
    """One released question against our codebook entry (OpinionQA convention) and answer counts."""
    their_options = [str(o) for o in item["options"] if _is_label(o)]
    theirs_set = {normalise(o) for o in their_options if normalise(o) != "refused"}
    ours_set = {normalise(o) for o in entry.options}
    by_norm = {normalise(label): n for label, n in counts.items()}
    only_ours = sorted(ours_set - theirs_set)
    only_theirs = sorted(theirs_set - ours_set)
    ours_text, theirs_text = wording(entry.question), wording(item["question"])
    similarity = round(float(fuzz.ratio(ours_text, theirs_text)), 1)
    row = {"qkey": qkey, "wave": wave, "qcode": qcode, "wording_similarity": similarity,
           "our_question": entry.question, "their_question": item["question"], "our_options": list(entry.options),
           "their_options": their_options, "options_only_ours": only_ours, "options_only_theirs": only_theirs}
    chosen = [o for o in only_ours if by_norm.get(o, 0) > 0]
    if only_theirs or chosen:
        parts = []
        if chosen:
            parts.append("release lacks " + ", ".join(f"'{o}' ({by_norm[o]} respondents)" for o in chosen))
        if only_theirs:
            parts.append("only the release has " + ", ".join(f"'{o}'" for o in only_theirs))
        return row | {"status": "options_differ", "reason": "; ".join(parts)}
    if only_ours:
        return row | {"status": "options_unobserved",
                      "reason": "release lacks only options nobody chose: " + ", ".join(f"'{o}'" for o in only_ours)}
    holds_options = _ends_with_options(ours_text, theirs_text, list(entry.options))
    if not holds_options and _truncated(ours_text, theirs_text):
        return row | {"status": "label_truncated",
                      "reason": f"our label ({len(ours_text)} chars) is the start of the release's text ({len(theirs_text)}), "
                                "which goes on: a label cut short, or a stem the release completes"}
    if similarity >= SIMILAR:
        return row | {"status": "matched", "reason": ""}
    if holds_options:
        return row | {"status": "wording_differs", "reason": f"wording similarity {similarity:.1f} < {SIMILAR:.0f}: "
                      "the release's text also holds the answer options"}
    contained = fuzz.partial_ratio(theirs_text, ours_text) >= SIMILAR if len(theirs_text) < len(ours_text) else False
    why = ("the release keeps only part of our label (an item or the stem)" if contained
           else "the release's text is not part of our label (ours may name another item; check the questionnaire)")
    return row | {"status": "wording_differs", "reason": f"wording similarity {similarity:.1f} < {SIMILAR:.0f}: {why}"}


def _missing(qkey: str, wave: str, qcode: str, item: dict, reason: str) -> dict:
    their_options = [str(o) for o in item["options"] if _is_label(o)]
    return {"qkey": qkey, "wave": wave, "qcode": qcode, "status": "missing", "reason": reason,
            "wording_similarity": float("nan"), "our_question": None, "their_question": item["question"],
            "our_options": [], "their_options": their_options, "options_only_ours": [], "options_only_theirs": []}


def _audit_wave(wave: str, questions: dict[str, dict], book: WaveCodebook | None, waves_dir: Path) -> list[dict]:
    rows: list[dict] = []
    if book is None:
        return [_missing(f"{q}_{wave}", wave, q, item, f"wave {wave} not available ({wave}.sav not in {waves_dir})")
                for q, item in questions.items()]
    found = {}
    for code, item in questions.items():
        qcode = code[: -len(wave) - 1] if code.endswith(f"_{wave}") else code  # some release codes carry the suffix
        column = book.columns_upper.get(f"{qcode}_{wave}".upper())
        if column is None:
            rows.append(_missing(f"{qcode}_{wave}", wave, qcode, item, f"no column {qcode}_{wave} in {book.path.name}"))
        elif column not in book.questions:
            why = book.skipped.get(column, "not a question column")
            rows.append(_missing(column, wave, qcode, item, f"{column} is not a closed question in {book.path.name}: {why}"))
        else:
            found[column] = (qcode, item)
    counts = answer_counts(book.path, [book.questions[c] for c in found])
    for column, (qcode, item) in found.items():
        rows.append(compare(column, wave, qcode, item, book.questions[column], counts[column]))
    return rows


def audit_release(release_json: str | Path, waves_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """One row per question of the release: `status` (STATUSES), `reason` (set unless matched),
    `wording_similarity` and both sides' wording and options. Reads one wave at a time."""
    release = load_release(Path(release_json))
    files = wave_files(Path(waves_dir))
    rows: list[dict] = []
    for wave, questions in tqdm(release.items(), desc="audit waves", unit="wave", disable=not progress):
        book = read_codebook(files[wave]) if wave in files else None
        rows.extend(_audit_wave(wave, questions, book, Path(waves_dir)))
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(table: pd.DataFrame) -> dict:
    """Counts per status (DVC metrics) and the share of the release we have."""
    counts = table["status"].value_counts()
    total = int(len(table))
    return {"questions": total, **{f"status_{s}": int(counts.get(s, 0)) for s in STATUSES},
            "missing_share": round(float(counts.get("missing", 0)) / total, 4) if total else 0.0}
