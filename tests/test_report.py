"""Leaderboards, DVC files and figures: from synthetic predictions through the real stages."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from _evaluation_project import make_project
from opinionbench.scoring import report
from opinionbench.cli import main
from opinionbench.scoring.leaderboard import leaderboard_frame

PNG = b"\x89PNG\r\n\x1a\n"
DECLARING_KEYS = {"infer.dataset", "infer.run", "infer.methods", "infer.steerings", "infer.baselines", "infer.parts_dir"}


def declare_runs(root):
    """Declare the synthetic predictions in params (evaluate scores only what `infer.*` declares)."""
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault("infer", {"dataset": "sample", "run": ["toy"], "methods": ["logprobs", "verbalized", "sequence"],
                                "steerings": ["none", "persona", "few-shot"], "baselines": []})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, sample_sav):
    """The project after `opinionbench calibrate` and `opinionbench evaluate` (tracking off)."""
    import os

    root = declare_runs(make_project(tmp_path_factory.mktemp("project"), sample_sav))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["calibrate"]) == 0
        assert main(["evaluate"]) == 0
    finally:
        os.chdir(cwd)
    return root


def test_leaderboard_has_models_baselines_and_human_references(evaluated):
    board = pd.read_csv(evaluated / "data/reports/leaderboards/sample.csv")
    entries = set(board["entry"])
    for expected in ["toy · logprobs · none", "toy · logprobs · persona", "toy · logprobs+T · none",
                     "uniform · baseline · none", "overall-prior · baseline · none",
                     "humans: other groups (avg)", "humans: other groups (worst)", "humans: groups vs public (avg)"]:
        assert expected in entries
    by = board.set_index("entry")
    # overall-prior *is* the public's distribution: perfectly representative of it.
    assert by.loc["overall-prior · baseline · none", "rep_overall"] == pytest.approx(1.0)
    assert by.loc["overall-prior · baseline · none", "tv_overall"] == pytest.approx(0.0)
    # Worst is never better than average, and every interval contains its point estimate.
    assert by.loc["humans: other groups (worst)", "rep_groups"] <= by.loc["humans: other groups (avg)", "rep_groups"]
    for col in ["rep_overall", "rep_groups", "tv_groups"]:
        ok = by[col].notna() & by[f"{col}_lo"].notna()
        assert ((by.loc[ok, f"{col}_lo"] <= by.loc[ok, col] + 1e-12) & (by.loc[ok, col] <= by.loc[ok, f"{col}_hi"] + 1e-12)).all()
    # Persona steering (80 % group truth) aligns with groups better than few-shot (40 %).
    assert by.loc["toy · logprobs · persona", "rep_groups"] > by.loc["toy · logprobs · few-shot", "rep_groups"]


def test_uniform_row_matches_a_hand_computation(evaluated):
    from opinionbench.tables import read_dataset

    questions, dist = read_dataset(evaluated / "data/build")
    overall = dist[dist["attribute"] == "Overall"].merge(questions[["qkey", "ordinal"]], on="qkey")
    reps = []
    for probs, ordinal in zip(overall["probs"], overall["ordinal"]):
        u = np.full(len(probs), 1 / len(probs))
        from scipy.stats import wasserstein_distance

        reps.append(1 - wasserstein_distance(ordinal, ordinal, u, probs) / (max(ordinal) - min(ordinal)))
    board = pd.read_csv(evaluated / "data/reports/leaderboards/sample.csv").set_index("entry")
    assert board.loc["uniform · baseline · none", "rep_overall"] == pytest.approx(np.mean(reps))


def test_calibration_flattens_an_oversharp_model_and_helps_on_heldout(evaluated):
    temps = json.loads((evaluated / "data/calibrated/temperatures.json").read_text())
    run = temps["datasets"]["sample"]["runs"]["toy"]["none"]
    assert run["temperature"] > 1.3  # predictions were sharpened with T = 0.5
    assert run["heldout_tv_after"] < run["heldout_tv_before"]
    assert set(temps["datasets"]["sample"]["heldout_questions"]).isdisjoint(temps["datasets"]["sample"]["calibration_questions"])
    calib = pd.read_csv(evaluated / "data/reports/leaderboards/sample_calibration.csv")
    assert (calib["tv_after"] < calib["tv_before"]).all()


def test_steerability_and_k2s_tables(evaluated):
    steer = pd.read_csv(evaluated / "data/reports/leaderboards/sample_steerability.csv")
    raw = steer[steer["method"] == "logprobs"]
    assert set(raw["group"]) == {"Republican", "Democrat"}
    assert (raw["best_steering"] == "persona").all()
    assert raw["steerability"].iloc[0] == pytest.approx(raw["steered"].mean())
    k2s = pd.read_csv(evaluated / "data/reports/leaderboards/sample_k2s_gap.csv")
    row = k2s.iloc[0]
    assert row["k2s_gap"] == pytest.approx(row["tv_sequence"] / row["tv_verbalized"] - 1)
    assert row["k2s_gap"] > 0  # the sequence model was given twice the noise
    md = (evaluated / "data/reports/leaderboards/sample.md").read_text()
    assert "Knowledge-to-simulation gap" in md and "Steerability" in md and "[" in md


def test_dvc_metrics_plots_and_figures(evaluated):
    metrics = json.loads((evaluated / "data/reports/metrics.json").read_text())
    assert metrics["sample"]["overall-prior_baseline_none"]["rep_overall"] == pytest.approx(1.0)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", key) for key in metrics["sample"])  # readable `dvc exp show` columns
    groups = pd.read_csv(evaluated / "data/reports/plots/groups.csv")
    assert list(groups.columns) == ["group", "entry", "representativeness"] and groups["group"].str.contains("POLPARTY").any()
    reliability = pd.read_csv(evaluated / "data/reports/plots/reliability.csv")
    assert set(reliability["curve"].str.rsplit(" | ", n=1).str[-1]) == {"raw", "scaled"}
    assert reliability[["predicted", "observed"]].apply(lambda c: c.between(0, 1)).all().all()
    assert all(not isinstance(v, float) or np.isfinite(v) for entry in metrics["sample"].values() for v in entry.values())
    plots = pd.read_csv(evaluated / "data/reports/plots/leaderboard.csv")
    assert list(plots.columns) == ["entry", "representativeness", "tv_groups"] and len(plots) >= 5
    for name in ["sample_leaderboard.png", "sample_group_heatmap.png", "sample_reliability.png"]:
        data = (evaluated / "data/reports/figures" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000


def test_bad_predictions_give_one_line_naming_file_and_question(tmp_path, sample_sav, capsys, monkeypatch):
    from opinionbench.inference.predictions import prediction_path

    root = make_project(tmp_path, sample_sav)
    path = prediction_path("sample", "toy", "verbalized", "none", root / "data/predictions")
    frame = pd.read_parquet(path)
    frame.at[0, "probs"] = [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    frame.to_parquet(path)
    monkeypatch.chdir(root)
    assert main(["evaluate"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "verbalized/none.parquet" in err[0] and frame.at[0, "qkey"] in err[0]
    assert "probabilities for" in err[0]


def test_invalid_params_name_the_key(tmp_path, sample_sav, capsys, monkeypatch):
    root = make_project(tmp_path, sample_sav)
    (root / "params.yaml").write_text((root / "params.yaml").read_text().replace("bootstrap: 200", "bootstrap: lots"))
    monkeypatch.chdir(root)
    assert main(["evaluate"]) == 2
    assert "evaluate.bootstrap" in capsys.readouterr().err


def test_markdown_cells_and_ordering():
    rows = [
        {"entry": "ref", "kind": "reference", "rep_groups": 0.99},
        {"entry": "b", "kind": "model", "rep_groups": 0.7, "rep_groups_lo": 0.6, "rep_groups_hi": 0.8},
        {"entry": "a", "kind": "model", "rep_groups": 0.9, "rep_groups_lo": 0.85, "rep_groups_hi": 0.95},
    ]
    frame = leaderboard_frame(rows)
    assert list(frame["entry"]) == ["a", "b", "ref"]  # models by score, references last
    md = report.leaderboard_markdown("d", frame, 0.95, [])
    assert "0.900 [0.850, 0.950]" in md and "| ref" in md


def test_scoring_stages_do_not_depend_on_model_params():
    """Changing one model's params must rerun that model's infer stage (and the scoring of its new
    predictions, through the data dependency), never re-trigger scoring through a params dependency."""
    from pathlib import Path

    import yaml

    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    for name in ("calibrate", "evaluate"):
        declared = [p if isinstance(p, str) else next(iter(p)) for p in stages[name]["params"]]
        # (evaluate reads which runs are declared: infer.run, methods, ... — never a model's own settings)
        assert not [p for p in declared if p.split(".")[0] == "models"
                    or (p.split(".")[0] == "infer" and p not in DECLARING_KEYS)], (name, declared)
        assert "${evaluate.predictions_dir}" in stages["evaluate"]["deps"]


def test_steerability_chooses_among_persona_formats():
    from opinionbench.scoring.evaluation import steerability_formats

    # OpinionQA: the best of the persona formats; few-shot keeps its own leaderboard rows.
    assert steerability_formats(["none", "few-shot", "persona-bio", "persona-qa"]) == ["persona-bio", "persona-qa"]
    assert steerability_formats(["none", "persona", "few-shot"]) == ["persona"]
    assert steerability_formats(["none", "few-shot"]) == ["few-shot"]
    assert steerability_formats(["none"]) == []


def test_index_html_gathers_the_results(evaluated):
    page = (evaluated / "data/reports/index.html").read_text()
    board = pd.read_csv(evaluated / "data/reports/leaderboards/sample.csv")
    assert page.count("<img ") >= 3 and "figures/sample_leaderboard.png" in page
    assert "<table data-dataset=\"sample\" class=\"dataframe leaderboard\">" in page
    assert all(html.escape(entry) in page for entry in board["entry"])
    assert "Knowledge-to-simulation gap" in page and "Steerability" in page and "Calibration" in page


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_index_html_renders_in_a_real_browser(evaluated, tmp_path):
    """Headless Chromium loads the page from disk: the leaderboard table shows every entry and
    every figure really loads (the page's own load handler counts them)."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; `make setup` installs it)")
    page = evaluated / "data/reports/index.html"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "<table" in dom, done.stderr[-2000:]
    board = pd.read_csv(evaluated / "data/reports/leaderboards/sample.csv")
    table = re.search(r'<table data-dataset="sample"[^>]*>(.*?)</table>', dom, re.S).group(1)
    assert len(re.findall(r"<tr", table)) == len(board) + 1  # header + one row per entry
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded and loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 3, loaded
    shot = tmp_path / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                    f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000


class _Tables(HTMLParser):
    """Each <table>'s header cells and the <dt> terms of the legend list that follows it."""

    def __init__(self):
        super().__init__()
        self.tables: list[tuple[list[str], list[str]]] = []
        self._tag: str | None = None
        self._in_dl = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "dl" and self.tables and not self.tables[-1][1]:
            self._in_dl = True
        self._tag = tag

    def handle_endtag(self, tag):
        self._in_dl = self._in_dl and tag != "dl"
        self._tag = None

    def handle_data(self, data):
        if self._tag == "th" and self.tables:
            self.tables[-1][0].append(data.strip())
        elif self._tag == "dt" and self._in_dl:
            self.tables[-1][1].append(data.strip())


def test_index_html_says_what_it_is_and_explains_every_column(tmp_path, sample_sav, monkeypatch):
    """The page names its data source, each dataset's questions and groups, and the code by git's
    content ids (the same in any clone or copy of the same files); every column of every table
    has a legend entry; `<NA>` never shows; and a rerun writes the very same bytes (dvc.lock)."""
    root = declare_runs(make_project(tmp_path, sample_sav))
    monkeypatch.chdir(root)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+00:00",
           "GIT_COMMITTER_DATE": "2026-01-02T03:04:05+00:00", "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    assert main(["evaluate"]) == 0
    page = (root / "data/reports/index.html").read_text()
    assert "not a git checkout" in page
    code = root / "src" / "opinionbench"
    code.mkdir(parents=True)
    (code / "__init__.py").write_text('"""stand-in for the package"""\n')
    for args in (["init", "-q"], ["add", "params.yaml", "src"], ["commit", "-q", "-m", "code"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    code_id = subprocess.run(["git", "rev-parse", "--short=12", "HEAD:src/opinionbench"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert main(["calibrate"]) == 0 and main(["evaluate"]) == 0
    first = (root / "data/reports/index.html").read_bytes()
    assert main(["evaluate"]) == 0
    assert (root / "data/reports/index.html").read_bytes() == first  # the same inputs: the same bytes
    page = first.decode()
    context = re.search(r"<section id='context'>(.*?)</section>", page, re.S).group(1)
    assert "data.waves_dir = data/sample: the embedded synthetic sample" in context
    assert f"git objects src/opinionbench {code_id}" in context and "uncommitted" not in context
    board = pd.read_csv(root / "data/reports/leaderboards/sample.csv")
    assert f"{int(board['n_questions'].max())} questions scored (of 12 in data/build)" in context
    assert "POLPARTY (Democrat, Independent, Other, Republican)" in context
    assert str(tmp_path) not in page and "<NA>" not in page and "&lt;NA&gt;" not in page
    parser = _Tables()
    parser.feed(page)
    assert len(parser.tables) >= 4  # leaderboard, steerability, k2s, calibration (+ provenance counts)
    for headers, legend in parser.tables:
        assert headers and set(headers) <= set(legend), (headers, legend)
    dds = re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", page)
    assert all(text.strip() for _, text in dds), [term for term, text in dds if not text.strip()]
    for mark in ("+T", "in-sample", "oracle", "degenerate", "rep_worst_group", "calibrated_by", "source", "flag"):
        assert mark in page
    # An edit to the code not yet committed is said so.
    (code / "__init__.py").write_text('"""stand-in for the package, edited"""\n')
    assert main(["evaluate"]) == 0
    assert f"git objects src/opinionbench {code_id} (uncommitted changes)" in (root / "data/reports/index.html").read_text()
