"""Maintainer commands that are not pipeline stages: `opinionbench <module name with _ → ->`.

They regenerate committed inputs (the sample wave, its questionnaire PDF) or help a person
look at the pipeline's outputs (review queue, provenance of a question); DVC never runs them.
Like stages, each is a module with `run(args) -> int` and optionally `add_arguments(parser)`,
keeping heavy imports inside `run`.
"""
