"""The package's shape: imports only go down the layers, no two modules import each other, and
files and functions stay short enough to read (a file at most 400 lines, a function at most 50).

The layers, bottom to top (README "Layout" lists the same):"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cifarlab"

# Module prefix -> layer. The longest matching prefix wins; a lower number is a lower layer.
LAYERS: dict[str, int] = {
    "cifarlab": 1,  # the package root only imports errors (its public names load lazily, by string)
    "cifarlab.errors": 1,
    "cifarlab.atomic": 1,
    "cifarlab.progress": 1,
    "cifarlab.tables": 1,
    "cifarlab.system": 1,
    "cifarlab.download": 1,
    "cifarlab.figures": 1,
    "cifarlab.config": 2,
    "cifarlab.data": 3,
    "cifarlab.models": 4,
    "cifarlab.runs": 5,
    "cifarlab.training": 6,
    "cifarlab.evaluation": 7,
    "cifarlab.robustness": 8,
    "cifarlab.analysis": 8,
    "cifarlab.export": 8,
    "cifarlab.runner": 9,
    "cifarlab.sweeps": 9,
    "cifarlab.studies": 9,
    "cifarlab.reports": 9,
    "cifarlab.tuning": 9,
    # BiT few-shot transfer is a sweep of runs (few-shot runs are points of the sweep runner), so it sits
    # with the other things made of many runs, above the single-run siblings robustness and analysis.
    "cifarlab.transfer": 9,
    "cifarlab.api": 10,
    "cifarlab.cli": 10,
    "cifarlab.__main__": 10,
}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py and README 'Layout'")


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


MODULES = {module_name(path): path for path in source_files()}


def resolve(module: str, imported: str, level: int, is_package: bool) -> str:
    """The absolute name of `imported` as written in `module` (relative imports resolved)."""
    if level == 0:
        return imported
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([imported] if imported else []))


def imports_of(path: Path) -> set[str]:
    """Every cifarlab module `path` imports, at the top, inside functions or under TYPE_CHECKING."""
    module = module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, node.module or "", node.level, path.name == "__init__.py")
            for alias in node.names:
                # `from package import submodule` imports the submodule; `from module import name` the module.
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in MODULES else source)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(path) for module, path in MODULES.items()}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_only_go_down_the_layers():
    climbing = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in GRAPH.items() for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not climbing, "imports that climb back up:\n" + "\n".join(climbing)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(GRAPH):
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_two_modules_import_each_other():
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in cycles)


def test_the_checker_sees_a_cycle_and_a_climbing_import():
    # The checks above pass on an empty answer; show that they find what they look for.
    saved = dict(GRAPH)
    try:
        GRAPH.clear()
        GRAPH.update({"cifarlab.data.a": {"cifarlab.training.b"}, "cifarlab.training.b": {"cifarlab.data.a"}})
        assert _cycles() == [["cifarlab.data.a", "cifarlab.training.b"]]
        with pytest.raises(AssertionError, match="climb"):
            test_imports_only_go_down_the_layers()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_files_are_at_most_400_lines():
    long = [f"{path.relative_to(PACKAGE)}: {n}" for path in source_files()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    assert not long, f"files over {MAX_FILE_LINES} lines (split them by idea):\n" + "\n".join(long)


def test_functions_are_at_most_50_lines():
    long = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - first + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {lines}")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n" + "\n".join(long)
