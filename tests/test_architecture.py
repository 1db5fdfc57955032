"""The shape of the package, checked statically: stages ↔ dvc.yaml, no import cycles, layers.

Why: `dvc repro` reruns a stage only when one of its deps changes, so a stage whose own module is
missing from its deps keeps stale outputs after its code changes; and a library that imports
upward (the metrics importing a stage, a backend importing the CLI) cannot be reused or tested
in pieces. Imports inside functions count like top-level ones: a lazy import is still a
dependency, only a cheaper one. Imports under `if TYPE_CHECKING:` do not: they never run, and
they are how an annotation names a type without creating the dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "opinionbench"

# Layers, low → high: a module may import its own layer or a lower one, never a higher one.
LAYERS: list[set[str]] = [
    {"errors", "io", "registry", "config", "tables", "__init__"},
    # "sample": the synthetic wave; "embedded": the bundled model; "neighbours", "prompting":
    # shared by models/steering/elicit, so below all of them.
    {"survey", "questionnaire", "datasets", "models", "sample", "embedded", "neighbours", "prompting", "audit"},
    {"steering"},
    {"elicit"},
    {"inference"},
    {"scoring", "validation", "tracking"},
    {"stages", "tools"},
    {"cli"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST):
    """Every node, functions included, except the bodies of `if TYPE_CHECKING:` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _import_graph() -> dict[str, set[str]]:
    """module → the opinionbench modules it imports anywhere in its file (functions included)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # `from pkg import sub` imports the submodule when there is one, else a name of pkg
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` where only a.b is ours, etc.
                    target = target.rpartition(".")[0]
                if target.startswith("opinionbench") and target != name:
                    graph[name].add(target)
    return graph


def _component(module: str) -> str:
    """`opinionbench.scoring.metrics` → `scoring`; the package itself → `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _config_checks_names(source: str, target: str) -> bool:
    """config validates plug-in names against a package's registry (its `__init__`): the one
    sanctioned upward import, done inside the validator so importing config stays cheap."""
    return source == "opinionbench.config" and (PACKAGE.joinpath(*target.split(".")[1:]) / "__init__.py").exists()


def test_every_module_has_a_layer():
    unknown = sorted({_component(m) for m in _modules()} - set(LAYER))
    assert not unknown, f"place these in LAYERS (tests/test_architecture.py): {unknown}"


def test_no_import_from_a_lower_layer_into_a_higher_one():
    upward = []
    for source, targets in _import_graph().items():
        for target in targets:
            low, high = _component(source), _component(target)
            if low in LAYER and high in LAYER and LAYER[high] > LAYER[low] and not _config_checks_names(source, target):
                upward.append(f"{source} (layer {LAYER[low]}) -> {target} (layer {LAYER[high]})")
    assert not upward, "imports into a higher layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_stages_import_no_other_stage():
    bad = sorted(f"{s} -> {t}" for s, targets in _import_graph().items() for t in targets
                 if _component(s) in {"stages", "tools"} and _component(t) == "stages")
    assert not bad, bad


def _dvc_stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}  # foreach: the body is under `do`


def test_every_dvc_stage_lists_its_own_module_in_deps():
    missing = []
    for name, spec in _dvc_stages().items():
        module = f"src/opinionbench/stages/{name.replace('-', '_')}.py"
        if module not in (spec.get("deps") or []):
            missing.append(f"{name}: {module}")
        elif not (REPO / module).exists():
            missing.append(f"{name}: {module} does not exist")
    assert not missing, missing


def test_every_stage_module_is_a_dvc_stage_run_by_its_command():
    stages = _dvc_stages()
    modules = sorted(p.stem for p in (PACKAGE / "stages").glob("*.py") if p.stem != "__init__")
    not_stages = [m for m in modules if m.replace("_", "-") not in stages]
    assert not not_stages, f"modules in stages/ that are not dvc.yaml stages (tools/ holds the others): {not_stages}"
    for name, spec in stages.items():
        assert str(spec["cmd"]).split()[:2] == ["opinionbench", name], (name, spec["cmd"])
