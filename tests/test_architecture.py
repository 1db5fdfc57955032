"""The shape of the package, checked statically: stages ↔ dvc.yaml, no import cycles, layers.

Why: `dvc repro` reruns a stage only when one of its deps changes, so a stage whose own module is
missing from its deps keeps stale outputs after its code changes; and a library that imports
upward (the metrics importing a stage, a backend importing the CLI) cannot be reused or tested
in pieces. Every import counts, at the top of a module, inside a function or under `if
TYPE_CHECKING:`: a lazy import is still a dependency, only a cheaper one, and a type named in an
annotation is part of the module's interface. config.py is the composition root: it composes
the settings types the packages own into params.yaml's sections, so it sits above every library
and imports downward only.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "opinionbench"

# Layers, low → high: a module may import its own layer or a lower one, never a higher one.
LAYERS: list[set[str]] = [
    {"errors", "io", "registry", "tables", "environment", "__init__"},
    # "sample": the synthetic wave; "embedded": the bundled model; "neighbours", "prompting":
    # shared by models/steering/elicit, so below all of them.
    {"survey", "questionnaire", "datasets", "models", "sample", "embedded", "neighbours", "prompting", "audit", "annotation"},
    {"steering"},
    {"elicit"},
    {"inference"},
    {"scoring", "validation", "tracking", "published", "release"},  # published: imported runs, scored with scoring.metrics
    {"config"},  # the composition root: params.yaml sections from the packages' own settings types
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


def _import_graph() -> dict[str, set[str]]:
    """module → the opinionbench modules it imports anywhere in its file (functions, TYPE_CHECKING included)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
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


def test_every_module_has_a_layer():
    unknown = sorted({_component(m) for m in _modules()} - set(LAYER))
    assert not unknown, f"place these in LAYERS (tests/test_architecture.py): {unknown}"


def test_no_import_from_a_lower_layer_into_a_higher_one():
    upward = []
    for source, targets in _import_graph().items():
        for target in targets:
            low, high = _component(source), _component(target)
            if low in LAYER and high in LAYER and LAYER[high] > LAYER[low]:
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


def test_the_report_stage_depends_on_every_path_its_page_names():
    """The report page names the git content ids of CODE_PATHS: the evaluate stage must depend on
    each, or a change there leaves the recorded page stale (a fresh run's page would differ)."""
    from opinionbench.stages.evaluate import CODE_PATHS

    deps = {str(dep).split("#")[0].strip() for dep in _dvc_stages()["evaluate"]["deps"]}
    assert set(CODE_PATHS) <= deps, sorted(set(CODE_PATHS) - deps)


def test_every_stage_module_is_a_dvc_stage_run_by_its_command():
    stages = _dvc_stages()
    modules = sorted(p.stem for p in (PACKAGE / "stages").glob("*.py") if p.stem != "__init__")
    not_stages = [m for m in modules if m.replace("_", "-") not in stages]
    assert not not_stages, f"modules in stages/ that are not dvc.yaml stages (tools/ holds the others): {not_stages}"
    for name, spec in stages.items():
        assert str(spec["cmd"]).split()[:2] == ["opinionbench", name], (name, spec["cmd"])


# --- stage deps follow the imports ------------------------------------------------------------------
# `dvc repro` reruns a stage when one of its deps changes, so every source file a stage runs must be
# a dep (itself, or a listed folder holding it). The files are computed, not listed by hand: the
# closure of the stage module over the static import graph, where also
#   - importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` (a package's init is code it runs);
#   - a string naming one of our modules is an import (a registry's `builtins` import by name), in
#     a module imported by name: a package init that runs only because a sibling is imported makes
#     no registry lookup (that is done by code importing the registry), so its plug-ins are not
#     followed from there;
#   - a string naming one of our folders (`resources.files("opinionbench.resources")`) is a
#     dependency on the data files in it (templates, YAML rules, word lists);
#   - config.py, the composition root, imports every package; a stage depends on the config names
#     it imports (the sections it loads) and on what those name, not on every section: `load(X)`
#     validates X alone, so `SECTIONS` (the table of all of them) is not followed.
# The root `opinionbench/__init__.py` is skipped while it imports nothing (it holds the version).

CONFIG = "opinionbench.config"


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _string_targets(tree: ast.AST, modules: dict[str, Path]) -> tuple[set[str], set[Path]]:
    """(our modules named by a string, our folders named by a string)."""
    named, folders = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("opinionbench."):
            if node.value in modules:
                named.add(node.value)
            folder = PACKAGE.parent.joinpath(*node.value.split("."))
            if folder.is_dir():
                folders.add(folder)
    return named, folders


def _imports(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> dict[str, set[str]]:
    """Our modules imported anywhere under `node` → the names imported from each (`from m import a`)."""
    found: dict[str, set[str]] = defaultdict(set)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                found[alias.name].add("*")
        elif isinstance(sub, ast.ImportFrom):
            if sub.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (sub.level - 1)]
                target = ".".join(base + ([sub.module] if sub.module else []))
            else:
                target = sub.module or ""
            for alias in sub.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    found[submodule].add("*")
                else:
                    found[target].add(alias.name)
    resolved: dict[str, set[str]] = defaultdict(set)
    for target, names in found.items():
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target.startswith("opinionbench"):
            resolved[target] |= names
    return resolved


def _config_modules(names: set[str], modules: dict[str, Path]) -> set[str]:
    """The modules config.py's names `names` reach: followed name by name through its top-level definitions."""
    tree = _parsed(modules[CONFIG])
    defs: dict[str, ast.AST] = {}
    imported: dict[str, str] = {}  # a name config imports → its module
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.module.startswith("opinionbench"):
            for alias in stmt.names:
                sub = f"{stmt.module}.{alias.name}"
                imported[alias.asname or alias.name] = sub if sub in modules else stmt.module
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            defs[stmt.name] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                if isinstance(target, ast.Name):
                    defs[target.id] = stmt
    reached: set[str] = set()
    todo, seen = [n for n in names if n != "*"] or list(defs), set()
    while todo:
        name = todo.pop()
        if name in seen or name == "SECTIONS":
            continue
        seen.add(name)
        if name in imported:
            reached.add(imported[name])
        if name in defs:
            reached |= set(_imports(defs[name], CONFIG, False, modules))
            named, _ = _string_targets(defs[name], modules)
            reached |= named
            todo += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name)]
            todo += [n.value.id for n in ast.walk(defs[name]) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]
    return reached


def stage_closure(stage_module: str) -> set[Path]:
    """Every file the stage module runs or reads from the package (see above)."""
    modules = _modules()
    files: set[Path] = set()
    todo: list[tuple[str, bool]] = [(stage_module, True)]  # (module, imported by name, not only as a parent)
    done: dict[str, bool] = {}
    while todo:
        module, by_name = todo.pop()
        if module in done and (done[module] or not by_name):
            continue
        done[module] = by_name or done.get(module, False)
        path = modules[module]
        files.add(path)
        parts = module.split(".")
        todo += [(".".join(parts[:i]), False) for i in range(2, len(parts))]  # the packages' inits run first
        tree = _parsed(path)
        for target, names in _imports(tree, module, path.name == "__init__.py", modules).items():
            if target == CONFIG and module != CONFIG:
                files.add(modules[CONFIG])
                todo += [(m, True) for m in sorted(_config_modules(names, modules))]
            elif target != CONFIG:
                todo.append((target, True))
        named, folders = _string_targets(tree, modules)
        if by_name:  # a registry imports its plug-ins on a lookup, made by code that imports it by name
            todo += [(m, True) for m in sorted(named - {CONFIG})]
        for folder in folders:
            files |= {f for f in folder.rglob("*") if f.is_file() and f.suffix not in {".py", ".pyc"}
                      and "__pycache__" not in f.parts}
    root = PACKAGE / "__init__.py"
    assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.parse(root.read_text()))), \
        "opinionbench/__init__.py imports: it is then code every stage runs; stop skipping it below"
    return files - {root}


def uncovered(files: set[Path], deps: list[str]) -> list[str]:
    """The files (repo-relative) that no dep covers: a dep covers itself and everything under it."""
    listed = [Path(d.rstrip("/")) for d in deps if "${" not in d]
    missing = []
    for f in sorted(files):
        rel = f.relative_to(REPO)
        if not any(rel == d or d in rel.parents for d in listed):
            missing.append(str(rel))
    return missing


def _stage_module(stage: str) -> str:
    return f"opinionbench.stages.{stage.replace('-', '_')}"


def test_every_dvc_stage_depends_on_the_code_it_imports():
    """The fix is printed: the deps lines to add to dvc.yaml, per stage."""
    report = []
    for name, spec in _dvc_stages().items():
        missing = uncovered(stage_closure(_stage_module(name)), [str(d) for d in spec.get("deps") or []])
        if missing:
            report.append(f"{name}:\n" + "\n".join(f"  - {m}" for m in missing))
    assert not report, "dvc.yaml deps miss code the stage imports (add these lines):\n" + "\n".join(report)


def test_the_deps_check_catches_the_files_correct_once_missed():
    """correct@<wave> once listed ten source paths but not these four it imports: each is reported
    when it (or the folder holding it) is taken out of the deps."""
    deps = [str(d) for d in _dvc_stages()["correct"]["deps"]]
    closure = stage_closure(_stage_module("correct"))
    for once_missed in ("src/opinionbench/questionnaire/cache.py", "src/opinionbench/questionnaire/ocr.py",
                        "src/opinionbench/survey/answer_classes.py", "src/opinionbench/config.py"):
        assert REPO / once_missed in closure, once_missed
        kept = [d for d in deps if not (once_missed == d or once_missed.startswith(d.rstrip("/") + "/"))]
        assert once_missed in uncovered(closure, kept), once_missed


def test_no_code_outside_elicit_compares_method_names():
    """What a method is comes from its capabilities (`elicit.capabilities(name)`, `with_capability`,
    `k2s_pair`): a comparison with a method's name elsewhere would miss the next method like it."""
    registry = next(n for n in ast.walk(_parsed(PACKAGE / "elicit" / "__init__.py"))
                    if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Registry")
    names = {k.value for k in registry.args[1].keys}
    assert {"logprobs", "verbalized", "sequence"} <= names
    found = []
    for module, path in _modules().items():
        if module.startswith("opinionbench.elicit"):
            continue
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.Compare):
                constants = [c for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in names]
                found += [f"{path.relative_to(REPO)}:{c.lineno}: {ast.unparse(node)}" for c in constants[:1]]
    assert not found, "method names compared outside elicit/ (ask its capabilities):\n" + "\n".join(found)
