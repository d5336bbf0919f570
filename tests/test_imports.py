"""The shape of the code: no import cycles among swarm's modules, and imports go one way
(orchestrator → monitor → registry). Read from the source with ``ast``, so a new cycle or a wrong-way
import fails here before it becomes a start-up order bug."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("registry", "monitor", "orchestrator", "bench")


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in known else base


def imports_of(module: str, path: Path, known: dict[str, Path], module_level: bool) -> set[str]:
    """The project modules ``module`` imports: only the imports run when it is loaded (``module_level``;
    function bodies excluded, ``if TYPE_CHECKING`` blocks included), or every import anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(t for t in _targets(node, module, path.name == "__init__.py", known)
                             if t.split(".")[0] in PACKAGES)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if not module_level:
                    visit(node.body)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        visit([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)])  # type: ignore[misc]
                if isinstance(node, ast.ExceptHandler):
                    visit(node.body)

    visit(tree.body)
    found.discard(module)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def graph(module_level: bool) -> dict[str, set[str]]:
    known = project_modules()
    return {name: imports_of(name, path, known, module_level) for name, path in known.items()}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_from_module_level_only(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nimport monitor.tick\nif TYPE_CHECKING:\n"
                      "    from registry import store\ndef f():\n    from orchestrator import wiring\n")
    known = {"monitor.tick": source, "registry.store": source, "orchestrator.wiring": source}
    assert imports_of("x.m", source, known, module_level=True) == {"monitor.tick", "registry.store"}
    assert imports_of("x.m", source, known, module_level=False) == {"monitor.tick", "registry.store",
                                                                    "orchestrator.wiring"}


def test_no_import_cycles() -> None:
    found = cycles(graph(module_level=True))
    assert not found, "import cycles (move the shared part into a module both import): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_layers_import_one_way() -> None:
    """orchestrator → monitor → registry: the monitor never loads the orchestrator (config, LLM), the
    registry loads neither, not even inside a function."""
    wrong = [f"{name} imports {target}"
             for name, targets in graph(module_level=False).items()
             for target in sorted(targets)
             if (name.startswith(("monitor", "registry")) and target.startswith("orchestrator"))
             or (name.startswith("registry") and target.startswith("monitor"))]
    assert not wrong, "; ".join(wrong)
