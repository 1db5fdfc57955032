"""`opinionbench <command>`: one command per DVC stage, plus the maintainer tools.

Commands are found, not listed: every module of `opinionbench.stages` and `opinionbench.tools` is
the command named like it (`_` → `-`), so a new stage is one module. Their heavy imports sit
inside `run()`, so `opinionbench build` does not pay for importing torch or Great Expectations.
Any project error is printed as one line (`error: <file/item>: <problem>`) with exit status 2;
set OPINIONBENCH_DEBUG=1 to see the traceback of an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

from opinionbench.errors import OpinionBenchError, one_line


def _commands(package: str) -> dict[str, str]:
    """command → module path for every module of `opinionbench.<package>`."""
    root = importlib.import_module(f"opinionbench.{package}")
    return {info.name.replace("_", "-"): f"opinionbench.{package}.{info.name}"
            for info in pkgutil.iter_modules(root.__path__)}


# command -> module with `run(args) -> int` and optionally `add_arguments(parser)`.
STAGES = _commands("stages")
TOOLS = _commands("tools")
assert not set(STAGES) & set(TOOLS), f"a tool is named like a stage: {sorted(set(STAGES) & set(TOOLS))}"
COMMANDS: dict[str, str] = {**STAGES, **TOOLS}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opinionbench", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, path in COMMANDS.items():
        module = importlib.import_module(path)
        summary = (module.__doc__ or "").strip().splitlines()
        p = sub.add_parser(name, help=summary[0].replace("%", "%%") if summary else None)
        if hasattr(module, "add_arguments"):
            module.add_arguments(p)
        p.set_defaults(_module=path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
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
