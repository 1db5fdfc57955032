"""push: the exported tasks into a Label Studio project; pull: its annotations into corrections.yaml.

A task's identity is its question (`data.qkey`): pushing again updates the tasks whose data
changed and adds only questions the project does not have, so repeating it never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opinionbench.annotation import AnnotationError
from opinionbench.annotation.client import LabelStudio
from opinionbench.annotation.corrections import Pulled, append_entries, collect
from opinionbench.annotation.tasks import read_export
from opinionbench.questionnaire.review import load_reviews

DESCRIPTION = ("opinionbench manual verification: check each question against its page crop; accept, edit "
               "the wording or options, or reject, with a comment. `opinionbench review pull` records the answers.")


@dataclass
class Pushed:
    project_id: int
    project: str  # created | updated | found
    added: int
    updated: int
    unchanged: int


def push(client: LabelStudio, export_dir: Path, title: str) -> Pushed:
    tasks = read_export(export_dir)
    config_path = Path(export_dir) / "label_config.xml"
    if not config_path.exists():
        raise AnnotationError(f"{config_path}: not found (run `opinionbench review export` again)")
    config = config_path.read_text()
    project, how = client.ensure_project(title, config, DESCRIPTION)
    there: dict[str, dict] = {}
    for task in sorted(client.tasks(project["id"]), key=lambda t: t["id"]):
        there.setdefault(task["data"].get("qkey"), task)
    new, updated, unchanged = [], 0, 0
    for task in tasks:
        old = there.get(task["data"]["qkey"])
        if old is None:
            new.append(task)
        elif old["data"] != task["data"]:
            client.update_task(old["id"], task["data"])
            updated += 1
        else:
            unchanged += 1
    added = client.import_tasks(project["id"], new)
    return Pushed(project["id"], how, added, updated, unchanged)


def pull(client: LabelStudio, export_dir: Path, title: str, reviews: Path) -> Pulled:
    project = client.find_project(title)
    if project is None:
        raise AnnotationError(f"{client.url}: no Label Studio project titled {title!r} (review.project; "
                              "run `opinionbench review push` first)")
    exported = {t["data"]["qkey"]: t["data"] for t in read_export(export_dir)}
    pulled = collect(client.tasks(project["id"]), exported, client.users(), load_reviews(reviews),
                     Path(export_dir) / "tasks.json")
    append_entries(reviews, pulled.added)
    return pulled
