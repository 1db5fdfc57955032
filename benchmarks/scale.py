"""Scale of the inference stages on a real dataset: wall time and peak RSS per stage, 100 → 1,000 → all.

Needs a built and validated dataset (a directory with questions.parquet + distributions.parquet,
e.g. the `validate` stage's `data/validation/dataset` of a build with
`data.waves_dir=../shared/data/atp`). Every measurement runs in its own subprocess, in one fresh
temporary project directory (nothing is written into the repository), and is measured with
wait4(): wall seconds and the peak RSS of the process tree it waited for (what `/usr/bin/time -v`
reports as "Maximum resident set size"; with worker processes, the largest single process).

Runs, in pipeline order (each with its own params file in the temporary project, own outputs and
caches, so no run reuses another's predictions; all share the `neighbours` table, as in DVC):
- `neighbours` (all questions): the sparse top-k table of the dataset, once;
- the similar-questions baseline on 100 and 1,000 questions, and every baseline on all questions;
- SmolLM2 log-probs, steering none, on 100 and 1,000 questions.

The stage commands are called through the `opinionbench` CLI (the constants below), so this
follows whatever stage layout the package has; edit them when a command is renamed.

Usage: python benchmarks/scale.py --dataset-dir data/validation/dataset [--skip-model] [--dry-run]
Last line: peak_rss_gb=X.XX growth=X.XX, growth = time(model, 1,000) / (10 x time(model, 100)):
1.00 is linear; the model's fixed start-up (loading, first batch) pulls it below 1, a
super-linear step in the runner pushes it above. Without the model runs growth is nan.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# CLI invocations: keep these in step with `opinionbench -h` (the stage commands were renamed once).
# `{params}` is the run's params file; every command runs with the temporary project as cwd.
def _opinionbench() -> list[str]:
    """The `opinionbench` console script beside this interpreter (a venv not on PATH), else `python -m`."""
    script = Path(sys.executable).with_name("opinionbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "opinionbench.cli"]


OPINIONBENCH = _opinionbench()
NEIGHBOURS_CMD = [*OPINIONBENCH, "--params", "{params}", "neighbours", "--no-progress"]
BASELINE_CMD = [*OPINIONBENCH, "--params", "{params}", "infer-baseline", "{name}"]
BASELINES_ALL = ["uniform", "overall-prior", "similar-questions"]
MODEL_NAME = "smollm2"
MODEL_CMD = [*OPINIONBENCH, "--params", "{params}", "infer", "--model", MODEL_NAME, "--method", "logprobs",
             "--no-progress"]
SIZES = (100, 1000)  # questions for the per-size runs (growth compares these two)
# ---------------------------------------------------------------------------------------------


@dataclass
class Measured:
    stage: str
    questions: int | str
    wall_s: float
    peak_rss_gb: float
    rc: int
    log: Path


def measure(cmd: list[str], cwd: Path, log: Path, env: dict | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS GB, exit code) of `cmd`, from wait4 on the child (like /usr/bin/time -v)."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kb = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # Linux: KiB; macOS: bytes
    return wall, rss_kb / 1024**2, proc.returncode


def count_questions(dataset_dir: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(dataset_dir / "questions.parquet").metadata.num_rows


def write_params(project: Path, run: str, dataset_dir: Path, n: int | None, baselines: list[str],
                 threads: int | None) -> Path:
    """`<project>/params-<run>.yaml`: the repo's params.yaml pointed at the dataset, outputs per run.

    Every run has its own predictions and chunk-cache directories (no run reuses another's
    cells); the dataset name and `neighbours_dir` are shared, so the `neighbours` stage's table
    is built once and read by the later runs, as in the DVC pipeline.
    """
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    infer = params.setdefault("infer", {})
    infer.update({
        "dataset": "scale", "dataset_dir": str(dataset_dir.resolve()),
        "out_dir": f"data/{run}/predictions", "parts_dir": f"data/{run}/cache/infer",
        "questions": {"n": n, "seed": 0, "waves": []},
        "run": [MODEL_NAME], "baselines": baselines, "methods": ["logprobs"], "steerings": ["none"],
    })
    if "neighbours_dir" in infer:
        infer["neighbours_dir"] = "data/neighbours"
    if "baselines_on_all" in infer:
        infer["baselines_on_all"] = False  # `questions.n` is the size measured
    if "tracking" in params:
        params["tracking"]["enabled"] = False
    if threads and MODEL_NAME in (params.get("models") or {}):
        params["models"][MODEL_NAME]["threads"] = threads
    path = project / f"params-{run}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def fill(cmd: list[str], **values: str) -> list[str]:
    return [part.format(**values) for part in cmd]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset-dir", type=Path, required=True,
                        help="directory with questions.parquet + distributions.parquet (a validated real build)")
    parser.add_argument("--skip-model", action="store_true", help="baselines and neighbours only")
    parser.add_argument("--skip-baselines", action="store_true", help="the model runs only (growth)")
    parser.add_argument("--threads", type=int, default=None, help=f"models.{MODEL_NAME}.threads (default: params.yaml)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects (their logs) and print where")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and params, run nothing")
    args = parser.parse_args()
    dataset_dir = args.dataset_dir.resolve()
    missing = [f for f in ("questions.parquet", "distributions.parquet") if not (dataset_dir / f).exists()]
    if missing:
        print(f"error: {dataset_dir}: no {', '.join(missing)} (build and validate a real dataset first)", file=sys.stderr)
        return 2
    total = count_questions(dataset_dir)
    root = Path(tempfile.mkdtemp(prefix="opinionbench-scale-"))
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    project = root / "project"
    (project / "data").mkdir(parents=True)
    plan: list[tuple[str, int | str, list[str]]] = []  # (stage, questions, command)
    if not args.skip_baselines:
        params = write_params(project, "neighbours", dataset_dir, None, [], args.threads)
        plan.append(("neighbours", total, fill(NEIGHBOURS_CMD, params=str(params))))
        for n in SIZES:
            params = write_params(project, f"similar-{n}", dataset_dir, n, ["similar-questions"], args.threads)
            plan.append(("baseline similar-questions", min(n, total),
                         fill(BASELINE_CMD, params=str(params), name="similar-questions")))
        params = write_params(project, "baselines-all", dataset_dir, None, BASELINES_ALL, args.threads)
        for name in BASELINES_ALL:
            plan.append((f"baseline {name}", total, fill(BASELINE_CMD, params=str(params), name=name)))
    if not args.skip_model:
        for n in SIZES:
            params = write_params(project, f"model-{n}", dataset_dir, n, [], args.threads)
            plan.append((f"{MODEL_NAME} logprobs/none", min(n, total), fill(MODEL_CMD, params=str(params))))

    print(f"dataset: {dataset_dir} ({total} questions); temporary projects under {root}")
    if args.dry_run:
        for stage, n, cmd in plan:
            print(f"[{stage} | {n}] (cd {project} && {shlex.join(cmd)})")
        first = sorted(project.glob("params-*.yaml"))[0]
        infer = yaml.safe_load(first.read_text())["infer"]
        print(f"infer section of {first.name}: " + yaml.safe_dump(infer, default_flow_style=True).strip())
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        return 0

    results: list[Measured] = []
    for i, (stage, n, cmd) in enumerate(plan):
        log = root / f"{i:02d}-{stage.replace(' ', '_').replace('/', '_')}.log"
        print(f"running {stage} on {n} questions ...", flush=True)
        wall, rss, rc = measure(cmd, project, log, env)
        results.append(Measured(stage, n, wall, rss, rc, log))
        if rc != 0:
            tail = log.read_text().splitlines()[-15:]
            print(f"  FAILED (exit {rc}); last lines of {log}:\n    " + "\n    ".join(tail), flush=True)

    print()
    print(f"| {'stage':<34} | {'questions':>9} | {'wall s':>8} | {'peak RSS GB':>11} | rc |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 10}|{'-' * 13}|----|")
    for r in results:
        print(f"| {r.stage:<34} | {r.questions!s:>9} | {r.wall_s:>8.1f} | {r.peak_rss_gb:>11.2f} | {r.rc:>2} |")
    model = {r.questions: r.wall_s for r in results if r.stage.startswith(MODEL_NAME) and r.rc == 0}
    small, large = (min(SIZES[0], total), min(SIZES[1], total))
    growth = model[large] / (large / small * model[small]) if small in model and large in model and small != large \
        else float("nan")
    if args.keep:
        print(f"logs and temporary projects kept in {root}")
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    peak = max((r.peak_rss_gb for r in results), default=float("nan"))
    print(f"peak_rss_gb={peak:.2f} growth={growth:.2f}")
    return 0 if all(r.rc == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
