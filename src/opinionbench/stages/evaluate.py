"""`evaluate` stage: every predictions file found → leaderboards, DVC metrics/plots, figures, MLflow runs.

Predictions are the ones params declare (`infer.run` × `infer.methods` × `infer.steerings` and
`infer.baselines`, each `<dataset>/<model>/<method>/<steering>.parquet` under
`evaluate.predictions_dir`, and the temperature-scaled ones under `evaluate.calibrated_dir`);
a file nothing declares (left by an earlier experiment) is reported as stale and not scored.
Imported runs (`published.out_dir/{predictions,calibrated}`, stage import-predictions) are
scored by the same code, marked `source: published` (their own temperature scaling in-sample).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from opinionbench.config import BuildParams, DataParams, DatasetsParams, EvaluateParams, InferParams, load
from opinionbench.published import PublishedParams
from opinionbench.tracking.settings import TrackingParams


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_text
    from opinionbench.scoring import report
    from opinionbench.scoring.calibrate import read_temperatures
    from opinionbench.scoring.evaluation import PUBLISHED, dataset_dir, discover
    from opinionbench.scoring.html_report import write_index
    from opinionbench.scoring.leaderboard import evaluate_dataset

    params, build = load(EvaluateParams, args.params), load(BuildParams, args.params)
    datasets, tracking = load(DatasetsParams, args.params), load(TrackingParams, args.params)
    published = load(PublishedParams, args.params).out_dir
    infer = load(InferParams, args.params)
    files = (_declared(discover(params.predictions_dir), params.predictions_dir, infer)
             + _declared(discover(params.calibrated_dir, calibrated=True), params.calibrated_dir, infer)
             + discover(published / "predictions", source=PUBLISHED)
             + discover(published / "calibrated", calibrated=True, source=PUBLISHED))
    temperatures = read_temperatures(params.temperatures)
    out = params.out_dir
    for sub in ("leaderboards", "figures", "plots"):
        shutil.rmtree(out / sub, ignore_errors=True)  # no stale file of a model no longer predicted
        (out / sub).mkdir(parents=True, exist_ok=True)

    evaluations, artifacts = [], {}
    for dataset in sorted({f.dataset for f in files}):
        result = evaluate_dataset(
            dataset, dataset_dir(dataset, datasets.out_dir, build.out_dir), [f for f in files if f.dataset == dataset],
            temperatures, n_boot=params.bootstrap, seed=params.seed, confidence=params.confidence,
            reliability_bins=params.reliability_bins)
        artifacts[dataset] = report.write_dataset_report(out, result, params.confidence)
        print(f"{dataset}: {len(result.frames)} predictions files, {len(result.asked)} questions -> "
              f"{artifacts[dataset][1]}")
        evaluations.append(result)

    leaderboards = {e.dataset: e.board for e in evaluations}
    report.write_dvc_files(out, leaderboards, evaluations)
    index = write_index(out, evaluations, artifacts, _context(args.params, build))
    print(f"report: {index}")
    write_text(report.leaderboards_index(leaderboards), out / "leaderboards" / "README.md")
    if not files:
        print(f"no predictions under {params.predictions_dir}: empty leaderboards (run the infer stages first)")
    if tracking.enabled and evaluations:
        from opinionbench.tracking.runs import log_evaluation

        settings = params.model_dump(mode="json", include={"bootstrap", "confidence", "seed", "reliability_bins"})
        print(log_evaluation(tracking, evaluations, artifacts, temperatures, args.params, settings,
                             parts_dir=infer.parts_dir))
    return 0


def _declared(files: list, root, infer: InferParams) -> list:
    """The files params declare (`infer.run` × methods × steerings, baselines); the others are stale
    leftovers of an earlier experiment: left out, and said so (the published runs are declared by
    `published.*`, whose stage rewrites its directory)."""
    from opinionbench.inference.declared import declared_tables, keep_declared

    kept, stale = keep_declared(files, root, declared_tables(infer.dataset, infer.run, infer.methods,
                                                             infer.steerings, infer.baselines))
    if stale:
        print(stale)
    return kept


def _context(params_path, build: BuildParams):
    """What the report page says about the data: build report, validation summary, text sources, reviews."""
    from opinionbench.config import QuestionnaireParams, ValidateParams
    from opinionbench.questionnaire.review import load_reviews
    from opinionbench.scoring.html_report import RunContext

    validate, questionnaire = load(ValidateParams, params_path), load(QuestionnaireParams, params_path)
    return RunContext(build_report=build.out_dir / "build_report.json",
                      validation_summary=validate.out_dir / "summary.json",
                      questions=build.out_dir / "questions.parquet",
                      reviews=len(load_reviews(questionnaire.reviews)),
                      data_source=_data_source(load(DataParams, params_path)),
                      code=_code_version(Path(params_path).resolve().parent))


def _data_source(data: DataParams) -> str:
    """Where the waves came from, as params.yaml writes it (a relative path stays relative)."""
    sample = data.waves_dir == DataParams.model_fields["waves_dir"].default
    what = "the embedded synthetic sample (not Pew data)" if sample else "Pew ATP waves (real data)"
    waves = ", ".join(data.waves) if data.waves else f"every W*.sav in {data.waves_dir.as_posix()}"
    return f"data.waves_dir = {data.waves_dir.as_posix()}: {what}; waves: {waves}"


# The code, named on the report page by git content id. Each path named is a dep of the evaluate
# stage in dvc.yaml, so the page is remade whenever one changes: a page naming what its stage does
# not depend on goes stale, and a fresh run's page then differs from the recorded one. The config
# is not named: a dep on all of params.yaml would remake the page (and rescore) for any setting,
# where one model's setting should rerun only its stages; dvc.lock records every stage's params
# (and dvc.yaml, which cannot be a DVC dep).
CODE_PATHS = ("src/opinionbench",)


def _code_version(root: Path) -> str:
    """The code as git names its content (the object id of `src/opinionbench/` at HEAD, `git log
    --find-object=ID` finds the commits), and whether it has uncommitted changes. Why content ids
    and not a commit hash or a date: the page is a DVC output whose hash dvc.lock records, so it
    may hold only what the same inputs reproduce. A commit hash changes with a commit that only
    records dvc.lock, and a clone or copy of the same files has other commits; the object ids are
    the same wherever the files are."""
    from functools import partial

    from opinionbench.tracking.lineage import git_output

    git = partial(git_output, cwd=root)
    if git("rev-parse", "--verify", "-q", "HEAD") is None:
        return "not a git checkout (no commit to name)"
    ids = {path: git("rev-parse", "--short=12", f"HEAD:{path}") for path in CODE_PATHS}
    named = ", ".join(f"{path} {oid}" for path, oid in ids.items() if oid) or "none of them committed"
    dirty = git("status", "--porcelain", "--", *CODE_PATHS)
    state = " (uncommitted changes)" if dirty else (" (git status failed)" if dirty is None else "")
    return f"git objects {named}{state}"
