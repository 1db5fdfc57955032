"""Submitted annotations → reviewed-correction entries, merged into corrections.yaml.

The file is the project's record of what people checked, so the merge only ever adds: new
entries are appended (comments and existing entries stay byte for byte), an answer already
pulled is recognised by its task id and not added twice, and anything that would contradict
the record is reported, one line per task, instead of written: two reviewers who disagree, an
answer edited in Label Studio after it was pulled, entries of the question that changed since
the export (someone else decided in between), options whose count no longer matches the
codebook (the distribution is aligned to them), a task that is no longer in the export.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from opinionbench.annotation import AnnotationError
from opinionbench.annotation.tasks import ACCEPT, EDIT, REJECT, entry_hash
from opinionbench.questionnaire.review import ReviewEntry, ReviewError, load_reviews

HEADER = """# Reviewed corrections: checked by a person against the questionnaire page, applied LAST when the
# dataset is built (see the comments of data/reviews/corrections.yaml in the repository).
"""


@dataclass
class Pulled:
    added: list[ReviewEntry] = field(default_factory=list)
    already: int = 0
    problems: list[str] = field(default_factory=list)


def _results(annotation: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for item in annotation.get("result") or []:
        value = item.get("value") or {}
        out[item.get("from_name", "")] = value.get("choices") or value.get("text") or []
    return out


def _proposal(task_id: int, data: dict, annotation: dict, reviewer: str) -> list[dict] | str:
    """The entries one annotation asks for, or what is wrong with it (one line)."""
    qkey, res = data["qkey"], _results(annotation)
    where = f"task {task_id} ({qkey})"
    decision = (res.get("decision") or [None])[0]
    when = dt.datetime.fromisoformat(str(annotation.get("updated_at") or annotation["created_at"]).replace("Z", "+00:00"))
    comment = " ".join(res.get("comment") or []).strip()
    base = {"qkey": qkey, "reviewer": reviewer, "date": when.date(), "task": task_id,
            "time": when.replace(microsecond=0), "reason": comment or f"{decision} in Label Studio"}
    current, kinds = data.get("current", ""), data.get("kinds", "")
    if decision == ACCEPT:
        corrected = (data.get("corrected") or "").strip()
        if "questionnaire" in kinds and corrected and corrected != current.strip():
            return [base | {"field": "question", "value": corrected, "before": current}]
        return [base | {"field": "checked", "value": "ours is right" if "audit" in kinds else "accepted as built"}]
    if decision == REJECT:
        codebook = (data.get("codebook") or "").strip()
        if data.get("current_source") == "questionnaire" and codebook and codebook != current.strip():
            return [base | {"field": "question", "value": codebook, "before": current}]
        return [base | {"field": "checked", "value": "automatic text rejected; the built wording stands"}]
    if decision != EDIT:
        return f"{where}: no decision (accept, edit or reject) in annotation {annotation.get('id')}"
    out = []
    question = "\n".join(res.get("question") or []).strip()
    if question and question != current.strip():
        out.append(base | {"field": "question", "value": question, "before": current})
    if res.get("options"):
        options = [line.strip() for line in "\n".join(res["options"]).splitlines() if line.strip()]
        before = [line for line in (data.get("options") or "").splitlines() if line.strip()]
        if options != before:
            if len(options) != int(data.get("n_options") or 0):
                return (f"{where}: edited options have {len(options)} labels, the codebook has {data.get('n_options')} "
                        "(one per line, same order: the distribution is aligned to them); not recorded")
            out.append(base | {"field": "options", "value": options, "before": before})
    return out or f"{where}: decision edit but neither the wording nor the options changed; not recorded"


def collect(ls_tasks: list[dict], exported: dict[str, dict], users: dict[int, str], existing: list[ReviewEntry],
            export_path: Path) -> Pulled:
    """Entries to add for every annotated task, checked against the export and the file."""
    pulled = Pulled()
    for task in sorted(ls_tasks, key=lambda t: t["id"]):
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            continue
        tid, qkey = task["id"], task["data"].get("qkey", "?")
        where = f"task {tid} ({qkey})"
        data = exported.get(qkey)
        if data is None:
            pulled.problems.append(f"{where}: no longer in the review export ({export_path}); annotation not recorded")
            continue
        proposals = []  # (who, entries) per annotation: one reviewer may have answered twice
        for a in annotations:
            reviewer = users.get(a.get("completed_by"), str(a.get("created_username", "")).strip(" ,") or "unknown")
            proposals.append((f"{reviewer} (annotation {a.get('id')})", _proposal(tid, data, a, reviewer)))
        errors = [p for _, p in proposals if isinstance(p, str)]
        if errors:
            pulled.problems += errors
            continue
        verdicts = {json.dumps([(p["field"], p["value"]) for p in prop], default=str) for _, prop in proposals}
        if len(verdicts) > 1:
            pulled.problems.append(f"{where}: reviewers disagree ({', '.join(who for who, _ in proposals)}); not "
                                   "recorded until one answer is left (update or delete the others in Label Studio)")
            continue
        then = sorted(r["hash"] for r in data.get("reviews_at_export", []) if r.get("task") != tid)
        now = sorted(entry_hash(e) for e in existing if e.qkey == qkey and e.task != tid)
        if then != now:
            pulled.problems.append(f"{where}: corrections.yaml entries of {qkey} changed since the export; "
                                   "not recorded (export and push again, then review the task once more)")
            continue
        mine = [e for e in existing if e.task == tid]
        proposal = proposals[0][1]
        if mine:
            if [(e.field, e.value) for e in mine] == [(p["field"], p["value"]) for p in proposal]:
                pulled.already += 1
            else:
                pulled.problems.append(f"{where}: the annotation changed after it was pulled (corrections.yaml has "
                                       f"{mine[0].field} = {mine[0].value!r}); not overwritten")
            continue
        pulled.added += [ReviewEntry.model_validate(p) for p in proposal]
    return pulled


def _yaml_items(entries: list[ReviewEntry]) -> str:
    items = [{k: v for k, v in e.model_dump().items() if v is not None} for e in entries]
    text = yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return "".join(f"  {line}\n" if line else "\n" for line in text.splitlines())


def append_entries(path: Path, entries: list[ReviewEntry]) -> None:
    """Append entries to the reviewed-corrections file, keeping every byte already there.

    The result is read back before it replaces the file: it must hold the old entries, in order,
    then the new ones; otherwise nothing is written and the error says why.
    """
    from opinionbench.io import write_text

    if not entries:
        return
    path = Path(path)
    old = load_reviews(path)
    text = path.read_text() if path.exists() else HEADER + "corrections:\n"
    if not text.endswith("\n"):
        text += "\n"
    combined = text + _yaml_items(entries)
    tmp = path.with_name(f".{path.name}.check")
    try:
        tmp.write_text(combined)
        check = load_reviews(tmp)
    except ReviewError as exc:
        raise AnnotationError(f"{path}: appending the pulled entries would not parse ({exc}); nothing written") from None
    finally:
        tmp.unlink(missing_ok=True)
    if check != old + entries:
        raise AnnotationError(f"{path}: `corrections:` is not the file's last block list, so entries cannot be "
                              "appended safely; nothing written (move it to the end of the file)")
    write_text(combined, path)
