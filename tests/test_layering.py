"""The data flows one way: no module imports from a layer above its own.

Layers, lowest first (docs/ARCHITECTURE.md). A module may import from its own package and
from any lower layer, at module level or inside a function alike. Package ``__init__``
files only re-export; the module-level cycle check leaves them out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xai_study"

LAYERS: list[set[str]] = [
    {"__init__", "errors", "devices", "maps", "labels", "resources"},
    {"video"},
    {"detectors", "data"},
    {"explainers"},
    {"metrics"},
    {"render"},
    {"runs"},
    {"study", "demo"},
    {"ui"},
    {"commands", "cli", "__main__"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (annotations only)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(path: Path) -> set[str]:
    """Every xai_study module ``path`` imports (module level or inside functions; not the
    imports for type annotations only)."""
    found = set()
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "xai_study":  # a submodule, or a name of the package
                found |= {
                    f"xai_study.{a.name}" if _is_module(a.name) else "xai_study" for a in node.names
                }
            elif node.module.startswith("xai_study."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("xai_study")}
    return found


def _is_module(name: str) -> bool:
    return (ROOT / f"{name}.py").is_file() or (ROOT / name / "__init__.py").is_file()


FILES = sorted(ROOT.rglob("*.py"))


def test_every_package_has_a_layer():
    units = {_unit(_module(f)) for f in FILES}
    assert units <= set(LAYER_OF), f"add to LAYERS: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_upward_imports(path):
    mine = _unit(_module(path))
    upward = [
        target
        for target in sorted(_imports(path))
        if _unit(target) != mine and LAYER_OF[_unit(target)] > LAYER_OF[mine]
    ]
    assert not upward, f"{mine} (layer {LAYER_OF[mine]}) imports from above: {upward}"


def test_no_module_import_cycles():
    """Between modules (package __init__ files aside), imports form no cycle: e.g.
    detectors.models and detectors.icpr do not import each other."""
    graph: dict[str, set[str]] = {}
    for f in FILES:
        if f.name == "__init__.py":
            continue
        graph[_module(f)] = {t for t in _imports(f) if t in _all_modules()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _all_modules() -> set[str]:
    return {_module(f) for f in FILES if f.name != "__init__.py"}
