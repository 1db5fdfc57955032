"""Print the code deps each dvc.yaml stage misses: the files its stage module imports (tests/test_architecture.py
computes the closure; this prints it as dvc.yaml lines).

    python scripts/stage_deps.py            # every stage
    python scripts/stage_deps.py correct    # one stage
    python scripts/stage_deps.py --write    # add them to dvc.yaml (comments and other lines kept)

A package of which most files are needed is printed as its folder, so dvc.yaml stays readable.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_architecture import PACKAGE, _dvc_stages, _stage_module, stage_closure, uncovered  # noqa: E402


def collapsed(missing: list[str], closure: set[Path]) -> list[str]:
    """Missing files, a top-level package folder in place of its files when most of it is needed."""
    out: list[str] = []
    for rel in missing:
        parts = Path(rel).relative_to("src/opinionbench").parts
        if len(parts) > 1:
            folder = PACKAGE / parts[0]
            files = [f for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
            if sum(f in closure for f in files) * 2 >= len(files):
                rel = str(folder.relative_to(REPO))
        if rel not in out:
            out.append(rel)
    return out


def write(text: str, stage: str, added: list[str]) -> str:
    """dvc.yaml's text with `added` appended to the stage's deps, after its last source dep; a
    source dep that an added folder now covers is dropped."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.match(rf"^  {re.escape(stage)}:", line))
    deps = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "deps:")
    indent = " " * (len(lines[deps]) - len(lines[deps].lstrip()) + 2)
    end = deps + 1
    while end < len(lines) and lines[end].startswith(f"{indent}- "):
        end += 1
    folders = [a for a in added if not a.endswith(".py")]
    items = [line for line in lines[deps + 1:end]
             if not any(line.split("#")[0].strip()[2:].strip().startswith(f + "/") for f in folders)]
    last = max((k for k, line in enumerate(items) if "src/opinionbench" in line), default=len(items) - 1)
    items[last + 1:last + 1] = [f"{indent}- {a}\n" for a in added]
    return "".join(lines[:deps + 1] + items + lines[end:])


def main(argv: list[str]) -> int:
    stages = _dvc_stages()
    rewrite = "--write" in argv
    names = [a for a in argv if a != "--write"] or list(stages)
    text = (REPO / "dvc.yaml").read_text()
    for name in names:
        closure = stage_closure(_stage_module(name))
        missing = uncovered(closure, [str(d) for d in stages[name].get("deps") or []])
        if missing:
            added = collapsed(missing, closure)
            print(f"{name}:\n" + "\n".join(f"  - {m}" for m in added))
            text = write(text, name, added) if rewrite else text
    if rewrite:
        (REPO / "dvc.yaml").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
