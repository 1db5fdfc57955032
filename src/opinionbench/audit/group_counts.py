"""Audit of OpinionQA's published per-group answer counts (`{ATTR}_data.json` of the
distributional-alignment release) against counts recomputed from the `.sav` files.

Their numbers are unweighted respondent counts per (question, group, option). Ours are counted
with our harmonised groups (resources/demographics.yaml) and OpinionQA's answer convention. One
row per (question, attribute, group) of the release:
- `matched`: every option's count agrees;
- `release_lost_answers`: they agree except on answers the release does not list at all,
  which respondents of the group gave (its loader read such labels, e.g. "None", as missing);
- `group_differs`: the group's size differs (a different group definition);
- `counts_differ`: same size, different counts per option;
- `not_compared`: a group of theirs that is not one of ours, or a question/wave we lack.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from opinionbench.audit.release import AuditError
from opinionbench.audit.sav import label_counts
from opinionbench.survey.answer_classes import normalise
from opinionbench.survey.wave import load_wave

COLUMNS = ["dataset", "qkey", "attribute", "group", "status", "reason", "our_n", "their_n", "our_counts", "their_counts"]
_NA_STRINGS = {"none", "n/a", "na", "nan", "null"}  # what pandas.read_csv turns into NaN by default
GROUP_STATUSES = ("matched", "release_lost_answers", "group_differs", "counts_differ", "not_compared")


def read_group_counts(human_resp_dir: Path) -> dict[tuple[str, str], dict]:
    """(dataset, attribute) -> {qkey: record} for every `*_data.json` under the directory."""
    files = sorted(Path(human_resp_dir).rglob("*_data.json"))
    if not files:
        raise AuditError(f"{human_resp_dir}: no *_data.json files (expected OpinionQA's human_resp directory)")
    out = {}
    for f in files:
        try:
            out[(f.parent.name, f.name[: -len("_data.json")])] = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise AuditError(f"{f}: not valid JSON ({exc})") from None
    return out


def _row(dataset, qkey, attribute, group, status, reason, ours=None, theirs=None) -> dict:
    ours, theirs = ours or {}, theirs or {}
    return {"dataset": dataset, "qkey": qkey, "attribute": attribute, "group": group, "status": status,
            "reason": reason, "our_n": int(sum(ours.values())) if ours else None,
            "their_n": int(round(sum(theirs.values()))) if theirs else None,
            "our_counts": json.dumps(ours, ensure_ascii=False), "their_counts": json.dumps(theirs, ensure_ascii=False)}


def compare_group(dataset, qkey, attribute, group, ours: dict[str, int], theirs: dict[str, float],
                  their_options: list[str]) -> dict:
    ours_n = {normalise(k): v for k, v in ours.items() if v}
    theirs_n = {normalise(k): int(round(v)) for k, v in theirs.items() if v}
    if ours_n == theirs_n:
        return _row(dataset, qkey, attribute, group, "matched", "", ours, theirs)
    lost = {k: v for k, v in ours_n.items() if k not in theirs_n}
    if lost and {k: v for k, v in ours_n.items() if k in theirs_n} == theirs_n:
        why = ("pandas reads the label 'None' as missing" if any(k in _NA_STRINGS for k in lost)
               else "listed as an option but never counted" if set(lost) <= {normalise(o) for o in their_options}
               else "not listed as an option")
        reason = "release has no count for " + ", ".join(f"'{k}' ({v} respondents)" for k, v in lost.items()) + f" ({why})"
        return _row(dataset, qkey, attribute, group, "release_lost_answers", reason, ours, theirs)
    if sum(ours_n.values()) != sum(theirs_n.values()):
        reason = f"group size differs: ours {sum(ours_n.values())}, theirs {sum(theirs_n.values())}"
        return _row(dataset, qkey, attribute, group, "group_differs", reason, ours, theirs)
    diff = sorted(k for k in set(ours_n) | set(theirs_n) if ours_n.get(k, 0) != theirs_n.get(k, 0))
    return _row(dataset, qkey, attribute, group, "counts_differ", "counts differ for " + ", ".join(f"'{k}'" for k in diff),
                ours, theirs)


def audit_group_counts(human_resp_dir: str | Path, waves_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """One row per (dataset, question, attribute, group) of the release; status in GROUP_STATUSES."""
    releases = read_group_counts(Path(human_resp_dir))
    by_wave: dict[str, list[tuple[str, str, str, dict]]] = defaultdict(list)
    for (dataset, attribute), records in releases.items():
        for qkey, record in records.items():
            by_wave[qkey.rsplit("_", 1)[-1]].append((dataset, attribute, qkey, record))
    rows: list[dict] = []
    for wave_id in tqdm(sorted(by_wave), desc="audit group counts", unit="wave", disable=not progress):
        path = Path(waves_dir) / f"{wave_id}.sav"
        items = by_wave[wave_id]
        if not path.exists():
            rows += [_row(d, q, a, g, "not_compared", f"wave {wave_id} not available ({path.name} not in {waves_dir})")
                     for d, a, q, rec in items for g in _groups(rec)]
            continue
        wave = load_wave(path, answer_classes="opinionqa")
        entries = {q.qkey: q for q in wave.codebook.questions}
        attributes = {a.name: a for a in wave.attributes}
        frame = wave.answers
        for dataset, attribute, qkey, record in items:
            entry, attr = entries.get(qkey), attributes.get(attribute)
            for group in _groups(record):
                theirs = record[group]
                if entry is None:
                    rows.append(_row(dataset, qkey, attribute, group, "not_compared",
                                     f"{qkey} is not a closed question of {path.name}: "
                                     f"{wave.skipped.get(qkey, 'no such column')}", theirs=theirs))
                    continue
                if attr is None or group not in attr.groups:
                    why = f"{path.name} has no {attribute} column" if attr is None else \
                        f"'{group}' is not one of our {attribute} groups {attr.groups}"
                    rows.append(_row(dataset, qkey, attribute, group, "not_compared", why, theirs=theirs))
                    continue
                values = frame[qkey].to_numpy(dtype=float)[attr.codes == attr.groups.index(group)]
                rows.append(compare_group(dataset, qkey, attribute, group, label_counts(values, entry), theirs,
                                          record.get("MC_options") or []))
    return pd.DataFrame(rows, columns=COLUMNS)


def _groups(record: dict) -> list[str]:
    return [k for k, v in record.items() if isinstance(v, dict)]
