"""`release` stage: the validated dataset as a release others load (Hugging Face `datasets` layout,
dataset card, Croissant metadata) and as an OpinionQA `human_resp` export.

Reads `release.dataset_dir` (stage validate's dataset) and validate's summary (quoted in the card);
writes `release.out_dir` and `release.human_resp_dir`, each whole or not at all.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from opinionbench.config import ReleaseParams, load
    from opinionbench.io import read_structured
    from opinionbench.release.build import release
    from opinionbench.tables import read_dataset

    params = load(ReleaseParams, args.params)
    questions, distributions = read_dataset(params.dataset_dir)
    validation = read_structured(params.summary, kind="json") if params.summary.exists() else {}
    result = release(questions, distributions, params.out_dir, name=params.name, version=params.version,
                     date_published=params.date_published,
                     validation=validation, human_resp_dir=params.human_resp_dir, attributes=params.attributes)
    print(f"release: {result.questions} questions, {result.cells} cells -> {result.out_dir} "
          f"(+ {result.surveys} surveys in {result.human_resp_dir}); {result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s")
    return 0
