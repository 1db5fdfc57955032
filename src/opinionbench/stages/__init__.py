"""Exactly the DVC stages, one module each, named like the stage (`validate-predictions` →
`validate_predictions.py`): read params, call the library, write outputs.

Each module has `run(args) -> int` and optionally `add_arguments(parser)`; the CLI command is the
module name with `_` → `-`, and dvc.yaml lists the module among the stage's deps, so editing a
stage reruns it. Heavy imports stay inside `run`, so building the CLI parser stays cheap. No
stage imports another.
"""
