"""`check-params` stage (DVC `check-params`, first of the pipeline): the whole params.yaml validated strictly.

    opinionbench check-params

Why a stage: every other stage declares exact keys in dvc.yaml (`infer.k_shots`), so DVC never
hands them a misspelt one: `k_shot: 5` beside `k_shots` left `dvc status` up to date and the
typo unread. This stage depends on params.yaml as a file, so any edit (by hand or by `dvc exp
run -S`) reruns it, and every other stage depends on its output: a bad key stops the run here,
with the project's one-line error naming it (`params.yaml: infer.k_shot: unknown key (did you
mean infer.k_shots?)`). Its output is the same for every valid params file, so a valid edit
reruns nothing downstream that does not read the edited key. (What DVC itself rejects before any
stage runs, e.g. a `${...}` in dvc.yaml naming a key that is gone, is in the README.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHECKED = Path("data/params_checked.json")  # the stage's output in dvc.yaml; the same for every valid file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=CHECKED, help="where to record that the params are valid")


def run(args: argparse.Namespace) -> int:
    from opinionbench.config import SECTIONS, InferParams, ModelsParams, load, load_section
    from opinionbench.io import write_json

    for name in SECTIONS:  # every section, each as strictly as the stage that reads it
        load_section(name, args.params)
    models = load(ModelsParams, args.params)
    for name in load(InferParams, args.params).run:  # each named model exists (DVC's matrix reads `models.<name>`)
        models.entry(name)
    write_json({"params": "valid", "sections": list(SECTIONS)}, args.out)
    print(f"{args.params}: every section valid ({', '.join(SECTIONS)})")
    return 0
