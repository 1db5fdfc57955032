"""Manual review in Label Studio, for real: export → push → annotate (API) → pull → `dvc repro`.

A real Label Studio server (its own venv, `make label-studio`) on 127.0.0.1 and a throwaway copy
of the project whose build ran through `dvc repro`. The reviewer's answer is submitted through
the API exactly as the labeling page's Submit sends it; pulling turns it into a corrections.yaml
entry, and the next `dvc repro` applies it with `text_source: reviewed`. Headless Chromium shows
the labeling page of one task: the crop and the fields are checked in its DOM. The bad inputs
(unreachable server, wrong token, a task gone from the export, an option count that no longer
matches, reviewers who disagree) each give one line naming the task, and corrections.yaml is
left byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _label_studio import BINARY, REVIEWER, CookieProxy, Server, annotation_result, chromium

REPO = Path(__file__).resolve().parents[1]
live = pytest.mark.integration  # a real server (and `dvc repro`) below; the first tests need none
NEW_WORDING = "How important, if at all, is religion in your life today?"


# --- without a server: the queue, checked entries, the crop's absence, the append ------------------

def _questions(wave: str, n: int = 3, provenance: bool = True) -> pd.DataFrame:
    rows = []
    for i in range(n):
        qkey = f"Q{i}_{wave}"
        chain = {"codebook": {"file": f"{wave}.sav", "variable": qkey, "label": f"Question {i}?"}, "text_source": "codebook"}
        rows.append({"qkey": qkey, "wave": wave, "question": f"Question {i}?", "options": ["Yes", "No"],
                     "text_source": "codebook", "provenance": json.dumps(chain) if provenance else None})
    return pd.DataFrame(rows)


def _corrected(wave: str, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame([{"qkey": f"Q{i}_{wave}", "status": "needs_review" if i == 0 else "accepted",
                          "review_reasons": ["drift 0.30 > 0.15"] if i == 0 else [], "confidence": [95.0, 85.0, 96.0][i],
                          "drift": 0.0, "topline_ok": True, "topline_detail": "", "page": 1} for i in range(n)])


def _workspace(tmp_path: Path, built_wave: str, corrected_wave: str) -> Path:
    (tmp_path / "data/build").mkdir(parents=True)
    _questions(built_wave).to_parquet(tmp_path / "data/build/questions.parquet")
    (tmp_path / f"data/q/{corrected_wave}").mkdir(parents=True)
    _corrected(corrected_wave).to_parquet(tmp_path / f"data/q/{corrected_wave}/corrected.parquet")
    params = {"build": {"out_dir": str(tmp_path / "data/build")}, "audit": {"out_dir": str(tmp_path / "data/audit")},
              "questionnaire": {"pdfs": {corrected_wave: "nowhere.pdf"}, "out_dir": str(tmp_path / "data/q"),
                                "reviews": str(tmp_path / "data/reviews/corrections.yaml"),
                                "provenance_dir": str(tmp_path / "data/prov")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path / "params.yaml"


def test_review_lists_headed_tables_of_open_items_of_the_current_build(tmp_path, capsys, monkeypatch):
    from opinionbench.cli import main

    monkeypatch.chdir(tmp_path)
    params = _workspace(tmp_path, "W900", "W900")
    assert main(["--params", str(params), "review"]) == 0
    out = capsys.readouterr().out
    assert "== Questionnaire corrections to check: 2 open of 3 questions (1 routed to review" in out
    assert "== Audit differences from the published release to check: 0 open of 0 ==" in out
    table = out.split("== Audit")[0]
    assert "Q0_W900" in table and "Q1_W900" in table and "Q2_W900" not in table  # nothing to check: not listed


def test_review_leaves_out_a_questionnaire_whose_wave_was_not_built(tmp_path, capsys, monkeypatch):
    from opinionbench.cli import main

    monkeypatch.chdir(tmp_path)
    params = _workspace(tmp_path, "W54", "W900")
    assert main(["--params", str(params), "review"]) == 0
    out = capsys.readouterr().out
    assert "W900: questionnaire not part of the current build" in out and "Q0_W900" not in out
    assert "0 open of 0 questions" in out


def test_a_checked_entry_changes_nothing_and_is_recorded(tmp_path):
    from opinionbench.questionnaire.review import apply_reviews, load_reviews

    path = tmp_path / "corrections.yaml"
    path.write_text(yaml.safe_dump({"corrections": [
        {"qkey": "Q1_W54", "field": "checked", "value": "ours is right", "reviewer": "r", "date": "2026-12-01",
         "reason": "audit wording_differs checked on the page"},
        {"qkey": "Q2_W54", "field": "question", "value": "Question two?", "reviewer": "r", "date": "2026-12-01",
         "reason": "typo"}]}))
    table, applied = apply_reviews(_questions("W54"), load_reviews(path), path)
    table = table.set_index("qkey")
    assert table.loc["Q1_W54", "question"] == "Question 1?" and table.loc["Q1_W54", "text_source"] == "codebook"
    assert applied["Q1_W54"][0]["field"] == "checked" and applied["Q1_W54"][0]["after"] == "ours is right"
    assert table.loc["Q2_W54", "question"] == "Question two?" and table.loc["Q2_W54", "text_source"] == "reviewed"


def test_provenance_says_why_there_is_no_crop(tmp_path, capsys, monkeypatch):
    from opinionbench.cli import main

    monkeypatch.chdir(tmp_path)
    params = _workspace(tmp_path, "W54", "W900")
    assert main(["--params", str(params), "provenance", "Q1_W54"]) == 0
    out = capsys.readouterr().out
    assert "page crop: none (Q1_W54 has no questionnaire record: no questionnaire PDF for W54 in questionnaire.pdfs" in out
    assert "text source: codebook" in out and not (tmp_path / "data/prov").exists()


def test_append_keeps_every_byte_and_refuses_a_file_it_cannot_extend(tmp_path):
    import datetime as dt

    from opinionbench.annotation import AnnotationError
    from opinionbench.annotation.corrections import append_entries
    from opinionbench.questionnaire.review import ReviewEntry, load_reviews

    new = ReviewEntry(qkey="Q1_W54", field="question", value="Better?", reviewer="r", date=dt.date(2026, 12, 4),
                      reason="page 1", task=7, time=dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc), before="Q?")
    path = tmp_path / "corrections.yaml"
    path.write_text("# header comment\ncorrections:\n  - qkey: Q0_W54  # kept\n    field: checked\n    value: ours is right\n"
                    "    reviewer: r\n    date: 2026-12-01\n    reason: by hand\n")
    before = path.read_text()
    append_entries(path, [new])
    assert path.read_text().startswith(before) and load_reviews(path)[1] == new
    flow = tmp_path / "flow.yaml"
    flow.write_text("corrections: []\nnotes: x\n")
    with pytest.raises(AnnotationError, match="nothing written"):
        append_entries(flow, [new])
    assert flow.read_text() == "corrections: []\nnotes: x\n"


# --- against a real Label Studio server ---------------------------------------------------------------

def _project_files() -> list[str]:
    def git(*args):
        out = subprocess.run(["git", "ls-files", "-z", *args], cwd=REPO, check=True, capture_output=True).stdout.decode()
        return [f for f in out.split("\0") if f and (REPO / f).is_file()]
    new = [f for f in git("--others", "--exclude-standard") if not f.startswith("data/")]
    return sorted(set(git("--cached")) | set(new))


def _env(token: str | None) -> dict[str, str]:
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", MLFLOW_ENABLE_TELEMETRY="false", DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("LABEL_STUDIO_API_KEY", None)
    if token is not None:
        env["LABEL_STUDIO_API_KEY"] = token
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not BINARY.exists():
        pytest.skip("Label Studio is not installed: run `make label-studio` (its own venv, .venv-label-studio/)")
    root = tmp_path_factory.mktemp("label-studio")
    ls = Server(root / "data", token=secrets.token_hex(20))
    try:
        ls.start()
        yield ls
    finally:
        ls.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, server) -> Path:
    """A copy of the project (what a clone holds) whose build ran, pointed at the test server."""
    root = tmp_path_factory.mktemp("review-clone")
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    # A published release whose GUNLAWS wording differs from our label: the audit queues it.
    from opinionbench.audit.sav import read_codebook

    gun = read_codebook(REPO / "data/sample/W900.sav").questions["GUNLAWS_W900"]
    (root / "release.json").write_text(json.dumps({"W900": {"GUNLAWS": {
        "question": gun.question + " or kept as they are now, thinking about the whole country", "options": gun.options}}}))
    text = (root / "params.yaml").read_text()  # edited as text: comments and quoting stay as they are
    for old, new in (("\n  url: http://127.0.0.1:8089", f"\n  url: {server.url}"),
                     ("\naudit:\n  release: null", "\naudit:\n  release: release.json")):
        assert old in text, f"params.yaml no longer has {old.strip()!r}: update this test"
        text = text.replace(old, new, 1)
    (root / "params.yaml").write_text(text)
    for args in (["git", "init", "-q"], ["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"],
                 ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "clone"]):
        subprocess.run(args, cwd=root, check=True, capture_output=True)
    _run(root, [sys.executable, "-m", "dvc", "repro", "build"], None)
    return root


def _run(root: Path, args: list[str], token: str | None, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=root, env=_env(token), capture_output=True, text=True, timeout=1200)
    if ok:
        assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _review(root: Path, action: str, token: str | None, ok: bool = True, params: Path | None = None):
    args = [sys.executable, "-m", "opinionbench.cli"] + (["--params", str(params)] if params else []) + ["review", action]
    return _run(root, args, token, ok)


@pytest.fixture(scope="module")
def pushed(project, server):
    """Export and push twice: the second push must add nothing."""
    exported = _review(project, "export", None)
    first = _review(project, "push", server.token)
    second = _review(project, "push", server.token)
    projects = server.api("GET", "/api/projects")["results"]
    pid = next(p["id"] for p in projects if p["title"] == "opinionbench review")
    tasks = {t["data"]["qkey"]: t for t in server.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=100")["tasks"]}
    return {"export": exported, "first": first, "second": second, "pid": pid, "tasks": tasks,
            "exported": json.loads((project / "data/reviews/export/tasks.json").read_text())}


@live
def test_export_holds_the_crop_texts_options_and_reasons(pushed):
    tasks = {t["data"]["qkey"]: t["data"] for t in pushed["exported"]}
    assert "RELIMP_W900" in tasks and "AIFEEL_W900" not in tasks  # AIFEEL is already reviewed
    relimp = tasks["RELIMP_W900"]
    assert relimp["image"].startswith("data:image/png;base64,") and len(relimp["image"]) > 2000
    gunlaws = tasks["GUNLAWS_W900"]  # in both queues: the release's wording beside ours
    assert gunlaws["kinds"] == "questionnaire, audit" and "thinking about the whole country" in gunlaws["release"]
    assert "audit: wording_differs" in gunlaws["why"] or "audit: label_truncated" in gunlaws["why"]
    assert "religion" in relimp["ocr_text"] and "religion" in relimp["corrected"] and "religion" in relimp["codebook"]
    assert relimp["options"].splitlines()[0] == "Very important" and relimp["n_options"] == 4
    assert "OCR confidence" in relimp["why"] and relimp["priority"] > 0
    priorities = [t["data"]["priority"] for t in pushed["exported"]]
    assert priorities == sorted(priorities, reverse=True)


@live
def test_push_creates_the_project_and_repeating_it_adds_no_task(pushed):
    n = len(pushed["exported"])
    assert f"{n} tasks added" in pushed["first"].stdout
    assert "0 tasks added, 0 updated" in pushed["second"].stdout and f"{n} unchanged" in pushed["second"].stdout
    assert len(pushed["tasks"]) == n == len({t["data"]["qkey"] for t in pushed["tasks"].values()})


@pytest.fixture(scope="module")
def pulled(project, server, pushed):
    """A reviewer edits RELIMP's wording and checks ECONRATE (ours is right); pull twice; `dvc repro`."""
    before = (project / "data/reviews/corrections.yaml").read_text()
    relimp, econrate = pushed["tasks"]["RELIMP_W900"], pushed["tasks"]["ECONRATE_W900"]
    server.api("POST", f"/api/tasks/{relimp['id']}/annotations",
               json={"result": annotation_result("edit", question=NEW_WORDING, comment="checked against page 2")})
    server.api("POST", f"/api/tasks/{econrate['id']}/annotations", json={"result": annotation_result("accept")})
    gunlaws = pushed["tasks"]["GUNLAWS_W900"]  # an audit difference: accepting it says ours is right
    server.api("POST", f"/api/tasks/{gunlaws['id']}/annotations", json={"result": annotation_result("accept")})
    first = _review(project, "pull", server.token)
    after_first = (project / "data/reviews/corrections.yaml").read_text()
    second = _review(project, "pull", server.token)
    repro = _run(project, [sys.executable, "-m", "dvc", "repro", "build"], None)
    return {"before": before, "first": first, "second": second, "after_first": after_first, "repro": repro,
            "relimp": relimp["id"], "econrate": econrate["id"], "gunlaws": gunlaws["id"]}


@live
def test_pull_appends_entries_with_reviewer_time_and_task(project, pulled):
    assert pulled["after_first"].startswith(pulled["before"])  # every byte (comments, AIFEEL entry) kept
    entries = yaml.safe_load(pulled["after_first"])["corrections"]
    assert entries[0]["qkey"] == "AIFEEL_W900" and len(entries) == 4
    by_qkey = {e["qkey"]: e for e in entries[1:]}
    relimp, econrate, gunlaws = by_qkey["RELIMP_W900"], by_qkey["ECONRATE_W900"], by_qkey["GUNLAWS_W900"]
    assert relimp["field"] == "question" and relimp["value"] == NEW_WORDING
    assert relimp["before"] == "How important is religion in your life?"
    assert relimp["reviewer"] == REVIEWER and relimp["task"] == pulled["relimp"] and relimp["time"]
    assert relimp["reason"] == "checked against page 2"
    assert econrate["field"] == "checked" and econrate["value"] == "accepted as built"
    assert gunlaws["field"] == "checked" and gunlaws["value"] == "ours is right" and gunlaws["task"] == pulled["gunlaws"]
    assert "3 entries added" in pulled["first"].stdout
    assert "0 entries added" in pulled["second"].stdout and "3 already there" in pulled["second"].stdout
    assert (project / "data/reviews/corrections.yaml").read_text() == pulled["after_first"]


@live
def test_dvc_repro_applies_the_reviewed_wording(project, pulled):
    questions = pd.read_parquet(project / "data/build/questions.parquet").set_index("qkey")
    row = questions.loc["RELIMP_W900"]
    assert row["question"] == NEW_WORDING and row["text_source"] == "reviewed"
    chain = json.loads(row["provenance"])
    assert chain["text_source"] == "reviewed"
    assert chain["manual_review"][0]["task"] == pulled["relimp"] and chain["manual_review"][0]["reviewer"] == REVIEWER
    econrate = questions.loc["ECONRATE_W900"]
    assert econrate["text_source"] == "questionnaire"  # a check changes nothing
    assert json.loads(econrate["provenance"])["manual_review"][0]["field"] == "checked"
    shown = _run(project, [sys.executable, "-m", "opinionbench.cli", "provenance", "RELIMP_W900"], None).stdout
    assert "text source: reviewed" in shown and f"Label Studio task {pulled['relimp']}" in shown


@live
def test_labeling_page_shows_the_crop_and_the_fields(tmp_path, server, pushed):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium not installed (scripts/setup.sh installs it)")
    task = pushed["tasks"]["RELIMP_W900"]
    proxy = CookieProxy(server.port, server.session_cookies())
    try:
        url = f"{proxy.url}/projects/{pushed['pid']}/data?task={task['id']}"
        # The page is a React app that fetches the task after loading: a busy machine may need more
        # virtual time before the labeling pane is in the DOM (a readiness wait, not a timing check).
        for budget in (20000, 60000, 120000):
            dom = chromium("--dump-dom", f"--virtual-time-budget={budget}", url).stdout
            if '<textarea name="options"' in dom:
                break
        (tmp_path / "labeling.html").write_text(dom)
        shot = tmp_path / "labeling.png"
        chromium(f"--screenshot={shot}", "--window-size=1600,1100", f"--virtual-time-budget={max(budget, 60000)}", url)
    finally:
        proxy.close()
    assert '<textarea name="options"' in dom, f"labeling pane not rendered; DOM in {tmp_path / 'labeling.html'}"
    assert f'src="{task["data"]["image"][:200]}' in dom  # the crop is an <img> of the labeling pane
    # the texts beside it, the decision, and the reviewer's submitted wording (the annotation pulled above)
    for text in ("RELIMP_W900: OCR confidence", "OCR text", "Corrected text", "Codebook label", "Release wording",
                 "W900_questionnaire.pdf page 2", "Very important", ">accept<", ">edit<", ">reject<", NEW_WORDING):
        assert text in dom, text
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1600, 1100)
        assert len(image.convert("L").resize((160, 110)).getcolors(maxcolors=256)) > 20  # not a blank page


def _bad(project: Path, action: str, token: str | None, params: Path | None = None):
    before = (project / "data/reviews/corrections.yaml").read_bytes()
    proc = _review(project, action, token, ok=False, params=params)
    assert (project / "data/reviews/corrections.yaml").read_bytes() == before, "corrections.yaml changed"
    return proc


@live
def test_unreachable_server_and_wrong_token_are_one_line(project, server, pulled, tmp_path):
    dead = project / "params-dead.yaml"
    dead.write_text((project / "params.yaml").read_text().replace(f"url: {server.url}", "url: http://127.0.0.1:9", 1))
    for action in ("push", "pull"):
        proc = _bad(project, action, server.token, params=dead)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert "http://127.0.0.1:9: cannot connect to Label Studio (connection refused)" in proc.stderr
        proc = _bad(project, action, "wrong-token-0000")
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert "rejected the API token in $LABEL_STUDIO_API_KEY (HTTP 401" in proc.stderr
        assert "wrong-token-0000" not in proc.stdout + proc.stderr


@live
def test_bad_annotations_are_reported_per_task_and_nothing_is_lost(project, server, pushed, pulled):
    pid, tasks = pushed["pid"], pushed["tasks"]
    # a task the export no longer has (its question left the queue)
    server.api("POST", f"/api/projects/{pid}/import", json=[{"data": dict(tasks["REMOTE_W900"]["data"], qkey="GONE_W900")}])
    gone = next(t for t in server.api("GET", f"/api/tasks?project={pid}&page_size=100")["tasks"]
                if t["data"]["qkey"] == "GONE_W900")
    server.api("POST", f"/api/tasks/{gone['id']}/annotations", json={"result": annotation_result("accept")})
    # options edited to 3 labels where the codebook has 4
    climate = tasks["CLIMATE_W900"]
    n = climate["data"]["n_options"]
    server.api("POST", f"/api/tasks/{climate['id']}/annotations",
               json={"result": annotation_result("edit", options=climate["data"]["options"].splitlines()[:n - 1])})
    # two answers that disagree
    trustsci = tasks["TRUSTSCI_W900"]
    for decision in ("accept", "reject"):
        server.api("POST", f"/api/tasks/{trustsci['id']}/annotations", json={"result": annotation_result(decision)})
    proc = _bad(project, "pull", server.token)
    assert proc.returncode == 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith("conflict:")]
    assert len(lines) == 3, proc.stdout
    assert any(f"task {gone['id']} (GONE_W900): no longer in the review export" in line for line in lines)
    assert any(f"task {climate['id']} (CLIMATE_W900): edited options have {n - 1} labels, the codebook has {n}" in line
               for line in lines)
    assert any(f"task {trustsci['id']} (TRUSTSCI_W900): reviewers disagree" in line for line in lines)
    assert "0 entries added" in proc.stdout and "3 already there" in proc.stdout


@live
def test_entries_changed_since_export_are_a_conflict(project, server, pushed, pulled):
    """Someone records a decision on MINWAGE by hand after the export; a later answer in Label
    Studio is not written over it."""
    path = project / "data/reviews/corrections.yaml"
    path.write_text(path.read_text() + "  - qkey: MINWAGE_W900\n    field: checked\n    value: ours is right\n"
                    "    reviewer: by-hand\n    date: 2026-12-01\n    reason: checked on paper\n")
    minwage = pushed["tasks"]["MINWAGE_W900"]
    server.api("POST", f"/api/tasks/{minwage['id']}/annotations", json={"result": annotation_result("reject")})
    proc = _bad(project, "pull", server.token)
    assert f"task {minwage['id']} (MINWAGE_W900): corrections.yaml entries of MINWAGE_W900 changed since the export" \
        in proc.stdout


@live
def test_a_personal_access_token_works_too(project, server, pulled):
    """Label Studio's default token kind (a JWT refresh token): exchanged for an access token."""
    pat = server.api("POST", "/api/token/")["token"]
    assert pat.count(".") == 2
    proc = _review(project, "push", pat)
    assert "0 tasks added" in proc.stdout and pat not in proc.stdout + proc.stderr


@live
def test_the_token_is_never_written(project, server, pulled):
    for path in [project / "data/reviews/corrections.yaml", *sorted((project / "data/reviews/export").iterdir())]:
        assert server.token not in path.read_text(), path
    for proc in (pulled["first"], pulled["second"]):
        assert server.token not in proc.stdout + proc.stderr
