"""`opinionbench <command>`: one command per DVC stage, plus the tools around them.

Commands are imported lazily so that `opinionbench build` does not pay for importing torch or
Great Expectations. Any project error is printed as one line (`error: <file/item>: <problem>`)
with exit status 2; set OPINIONBENCH_DEBUG=1 to see the traceback of an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from opinionbench.errors import OpinionBenchError, one_line

# command -> (module under opinionbench.stages, help). Each module has `add_arguments(parser)`
# (optional) and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build", "build questions + distributions parquet from the configured waves"),
    "make-sample": ("make_sample", "regenerate the embedded synthetic wave data/sample/W900.sav"),
    "validate": ("validate", "Great Expectations over the build (or --predictions): Data Docs + summary"),
    "render-questionnaire": ("render_questionnaire", "write a (scanned) topline questionnaire PDF from a wave .sav"),
    "ocr": ("ocr", "OCR a wave's questionnaire PDF (pages in parallel, resumable)"),
    "correct": ("correct", "segment and correct a wave's OCR'd questionnaire with the configured backend"),
    "review": ("review", "list the questionnaire questions most in need of manual review"),
    "provenance": ("provenance", "print where a question's text came from and save its page crop"),
    "infer": ("infer", "predictions of one model x method over the steerings (or --baselines)"),
    "import": ("import_datasets", "import other benchmarks (OpinionQA subsets, NYT books, Global Values)"),
    "calibrate": ("calibrate", "temperature-scale logprobs predictions (fit on a question split)"),
    "evaluate": ("evaluate", "leaderboards, DVC metrics/plots, figures and MLflow runs from all predictions"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opinionbench", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        mod = importlib.import_module(f"opinionbench.stages.{module}") if _cheap(module) else None
        if mod is not None and hasattr(mod, "add_arguments"):
            mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _cheap(module: str) -> bool:
    """Stage modules keep heavy imports inside run(), so importing them for their flags is cheap."""
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        module = importlib.import_module(f"opinionbench.stages.{args._module}")
        return int(module.run(args) or 0)
    except OpinionBenchError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("OPINIONBENCH_DEBUG"):
            raise
        print(f"error: {one_line(exc)} (set OPINIONBENCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
