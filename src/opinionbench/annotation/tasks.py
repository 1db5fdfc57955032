"""The review queue as Label Studio tasks, and the labeling config a reviewer answers in.

One task per question (`data.qkey` is its identity: push updates a task in place instead of
adding a second one). A task carries everything a reviewer needs beside the scan: the page crop
(a PNG data URL, so no file serving is needed), the OCR text, the corrected text, the codebook
label, the release's wording where the audit has one, the options, why it is queued and its
priority. It also carries `reviews_at_export`, hashes of the corrections.yaml entries of
the question at export: pull refuses an answer when they changed since (someone else decided).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import warnings
from pathlib import Path

import pandas as pd

from opinionbench.annotation.queue import ReviewQueue
from opinionbench.questionnaire.provenance import crop_image
from opinionbench.questionnaire.review import ReviewEntry

# Decisions a reviewer can take (Choices values); pull turns each into entries.
ACCEPT, EDIT, REJECT = "accept", "edit", "reject"


def _audit_priority(status: str) -> float:
    """The audit's own order of consequence (options_differ first), as a score beside the
    questionnaire queue's: 1 to 5, the most consequential highest."""
    from opinionbench.audit.report import _PRIORITY as AUDIT_ORDER

    return float(max(AUDIT_ORDER.values()) + 1 - AUDIT_ORDER.get(status, max(AUDIT_ORDER.values())))

LABEL_CONFIG = """<View>
  <Header value="$qkey: $why"/>
  <View style="display: flex; gap: 1em">
    <View style="flex: 55%">
      <Image name="page" value="$image" zoom="true"/>
      <Text name="source" value="$page"/>
    </View>
    <View style="flex: 45%">
      <Header value="OCR text" size="6"/>
      <Text name="ocr_text" value="$ocr_text"/>
      <Header value="Corrected text" size="6"/>
      <Text name="corrected" value="$corrected"/>
      <Header value="Codebook label" size="6"/>
      <Text name="codebook" value="$codebook"/>
      <Header value="Release wording" size="6"/>
      <Text name="release" value="$release"/>
      <Header value="Options (as built)" size="6"/>
      <Text name="options_shown" value="$options"/>
    </View>
  </View>
  <Header value="Decision: accept the corrected text (audit: ours is right), edit, or reject the automatic text"/>
  <Choices name="decision" toName="page" choice="single" required="true" showInline="true">
    <Choice value="accept"/>
    <Choice value="edit"/>
    <Choice value="reject"/>
  </Choices>
  <Header value="Question wording (edit)" size="6"/>
  <TextArea name="question" toName="page" value="$current" editable="true" maxSubmissions="1" rows="4"/>
  <Header value="Options, one per line, same number and order (edit)" size="6"/>
  <TextArea name="options" toName="page" value="$options" editable="true" maxSubmissions="1" rows="6"/>
  <Header value="Comment" size="6"/>
  <TextArea name="comment" toName="page" maxSubmissions="1" rows="2"/>
</View>
"""

# Shown where a question has no page crop (no questionnaire PDF for its wave): a 1x1 white PNG.
BLANK_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")


def entry_hash(entry: ReviewEntry) -> str:
    return hashlib.sha256(json.dumps(entry.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


def reviews_at_export(entries: list[ReviewEntry], qkey: str) -> list[dict]:
    """What the export records of a question's entries: pull compares it with the file then."""
    return [{"task": e.task, "hash": entry_hash(e)} for e in entries if e.qkey == qkey]


def _data_url(qkey: str, row: pd.Series) -> str:
    try:
        image = crop_image(Path(row["source"]), int(row["page"]), [int(v) for v in row["bbox"]], int(row["dpi"]))
    except FileNotFoundError as exc:
        warnings.warn(f"{qkey}: no page crop ({exc})", stacklevel=2)
        return BLANK_PNG
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def build_tasks(queue: ReviewQueue, questions: pd.DataFrame, everything: bool = False) -> list[dict]:
    """Label Studio task dicts (`{"data": {...}}`), highest priority first.

    `questions` is the current build (qkey, question, options, text_source, provenance); a question
    is exported when the questionnaire queue flags it or the audit lists it and it is not reviewed
    yet (`everything`: every built question, for a full manual verification).
    """
    built = questions.set_index("qkey")
    corrected = queue.corrected.drop_duplicates("qkey").set_index("qkey") if len(queue.corrected) else pd.DataFrame()
    items: dict[str, dict] = {}
    rows = queue.questionnaire if everything else queue.flagged()
    for r in rows.itertuples():
        if r.reviewed and not everything:
            continue
        items[r.qkey] = {"kinds": ["questionnaire"], "priority": float(r.score), "why": [r.why] if r.why != "-" else []}
    for r in queue.audit.itertuples():
        if r.reviewed and not everything:
            continue
        item = items.setdefault(r.qkey, {"kinds": [], "priority": 0.0, "why": []})
        item["kinds"].append("audit")
        item["priority"] += _audit_priority(r.status)
        item["why"].append(f"audit: {r.status} ({r.reason})")
        item["release"] = _text(getattr(r, "their_question", ""))
    if everything:
        for qkey in built.index:
            items.setdefault(qkey, {"kinds": ["verification"], "priority": 0.0, "why": []})
    tasks = []
    for qkey, item in items.items():
        data = {"qkey": qkey, "kinds": ", ".join(item["kinds"]), "priority": round(item["priority"], 2),
                "why": "; ".join(item["why"]) or "manual verification", "release": item.get("release", ""),
                "image": BLANK_PNG, "page": "no questionnaire page", "ocr_text": "", "corrected": ""}
        if qkey in built.index:
            q = built.loc[qkey]
            chain = json.loads(q["provenance"]) if isinstance(q.get("provenance"), str) else {}
            data |= {"wave": str(q["wave"]), "current": str(q["question"]), "current_source": str(q["text_source"]),
                     "options": "\n".join(map(str, q["options"])), "n_options": len(q["options"]),
                     "codebook": chain.get("codebook", {}).get("label", "")}
        else:
            data |= {"wave": qkey.rpartition("_")[2], "current": "", "current_source": "not built", "options": "",
                     "n_options": 0, "codebook": ""}
        if qkey in corrected.index:
            c = corrected.loc[qkey]
            data |= {"image": _data_url(qkey, c),
                     "page": f"{Path(c['source']).name} page {int(c['page'])}, box {[int(v) for v in c['bbox']]}",
                     "ocr_text": _text(c["ocr_text"]), "corrected": _text(c["question"])}
        data["reviews_at_export"] = reviews_at_export(queue.entries, qkey)
        tasks.append({"data": data})
    return sorted(tasks, key=lambda t: (-t["data"]["priority"], t["data"]["qkey"]))


def write_export(tasks: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """tasks.json (what push sends, what pull checks answers against) and the labeling config."""
    from opinionbench.io import write_json, write_text

    out_dir = Path(out_dir)
    write_json(tasks, out_dir / "tasks.json")
    write_text(LABEL_CONFIG, out_dir / "label_config.xml")
    return out_dir / "tasks.json", out_dir / "label_config.xml"


def read_export(out_dir: Path) -> list[dict]:
    from opinionbench.annotation import AnnotationError
    from opinionbench.io import read_structured

    path = Path(out_dir) / "tasks.json"
    if not path.exists():
        raise AnnotationError(f"{path}: not found (run `opinionbench review export` first)")
    tasks = read_structured(path, kind="json", error=AnnotationError)
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "qkey" in t.get("data", {}) for t in tasks):
        raise AnnotationError(f"{path}: expected a list of tasks with data.qkey (rerun `opinionbench review export`)")
    return tasks
