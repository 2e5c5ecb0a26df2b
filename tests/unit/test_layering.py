"""The layers import downwards only: schemas <- topics <- kernels <- engines <- shell <- cli.

Read from the source with ``ast``: nothing is imported or run, so a module that would fail to
import (or import a cycle lazily) is still seen. Every import counts, also one inside a
function or under ``if TYPE_CHECKING:``: both are a dependency of the code, and hiding a loop
behind a lazy import does not remove it. Imports made from strings (``importlib``,
``python -m`` argv) are not seen.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The packages whose imports are checked; tests/ and bench/ may import anything.
CHECKED = ("schemas", "topics", "workers", "devstack")
WORKERS = "workers"


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module, where it is imported."""

    importer: str  # dotted name of the importing module
    path: Path  # its file, relative to the root
    line: int
    target: str  # dotted name of the imported module

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target}"


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _targets(root: Path, importer: str, is_package: bool, node: ast.AST) -> list[str]:
    """Modules an import statement names: ``from a import b`` is ``a.b`` when b is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if _is_module(root, name) else base for name in names]


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones too (an import is a statement: expressions are skipped,
    which keeps the walk over the whole tree cheap)."""
    for statement in body:
        yield statement
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(statement, field, ()):
                yield from _statements(child.body if _is_clause(child) else [child])


def _is_clause(node: ast.AST) -> bool:
    return isinstance(node, ast.excepthandler | ast.match_case)


def imports_in(root: Path, path: Path) -> list[Import]:
    """Every import in one file, with the line it is on (each module once per statement)."""
    importer = _module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    relative = path.relative_to(root)
    is_package = path.name == "__init__.py"
    return [
        Import(importer, relative, node.lineno, target)
        for node in _statements(tree.body)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in dict.fromkeys(_targets(root, importer, is_package, node))
    ]


def imports_under(root: Path, packages: Iterable[str]) -> list[Import]:
    return [
        found
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        for found in imports_in(root, path)
    ]


@functools.cache
def repository_imports() -> tuple[Import, ...]:
    return tuple(imports_under(ROOT, CHECKED))


def _within(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


@dataclass(frozen=True, slots=True)
class Rule:
    """Modules under ``importers`` (except those under ``exempt``) import none of
    ``forbidden``, unless the target is under ``allowed``."""

    importers: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()

    def broken_by(self, found: Import) -> bool:
        return (
            _within(found.importer, self.importers)
            and not any(_within(found.importer, e) for e in self.exempt)
            and any(_within(found.target, f) for f in self.forbidden)
            and not any(_within(found.target, a) for a in self.allowed)
        )


_DEV_AND_TEST = ("devstack", "bench", "tests")
RULES: Mapping[str, Rule] = {
    "schemas is the bottom layer": Rule("schemas", ("topics", WORKERS, *_DEV_AND_TEST)),
    "topics sits on schemas alone": Rule("topics", (WORKERS, *_DEV_AND_TEST)),
    "the production package does not use dev or test code": Rule(WORKERS, _DEV_AND_TEST),
    "kernels are pure: no engine, shell or cli": Rule(
        "workers.kernels", (WORKERS,), allowed=("workers.kernels", "workers.errors")
    ),
    "the cli is the top: nothing below imports it": Rule(
        WORKERS, ("workers.cli",), exempt=("workers.cli",)
    ),
}


def violations(rule: Rule, found: Iterable[Import]) -> list[Import]:
    return [imp for imp in found if rule.broken_by(imp)]


@pytest.mark.parametrize("name", list(RULES))
def test_layers_import_downwards_only(name: str) -> None:
    broken = violations(RULES[name], repository_imports())
    assert not broken, f"{name}; upward imports:\n" + "\n".join(map(str, broken))


# --------------------------------------------------------------------------- cycles


def _folder(dotted: str) -> str | None:
    """The top-level entry of workers/ a module belongs to (None outside workers/ or for the
    package itself)."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == WORKERS and len(parts) > 1 else None


def folder_edges(found: Iterable[Import]) -> dict[tuple[str, str], list[Import]]:
    """Imports from one workers/ folder into another, by (from, to)."""
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in found:
        source, target = _folder(imp.importer), _folder(imp.target)
        if source is not None and target is not None and source != target:
            edges[source, target].append(imp)
    return edges


def cycles(edges: Iterable[tuple[str, str]]) -> set[frozenset[str]]:
    """The groups of two or more folders that reach each other (strongly connected
    components, by Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.add(frozenset(group))
    return found


def describe(group: frozenset[str], edges: Mapping[tuple[str, str], list[Import]]) -> str:
    """A cycle group with every import that ties it together, file:line each."""
    lines = [f"workers/{{{', '.join(sorted(group))}}}:"]
    for (source, target), imports in sorted(edges.items()):
        if source in group and target in group:
            lines.append(f"  {source} -> {target}")
            lines.extend(f"    {imp}" for imp in imports)
    return "\n".join(lines)


def test_no_import_cycle_between_workers_folders() -> None:
    edges = folder_edges(repository_imports())
    found = cycles(edges)
    assert not found, "import cycles between workers/ folders:\n" + "\n".join(
        describe(group, edges) for group in sorted(found, key=sorted)
    )


# --------------------------------------------------------------------------- the checks


def _plant(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_planted_upward_import_and_cycle_are_found(tmp_path: Path) -> None:
    """The checks find what they look for, relative and lazy imports included."""
    _plant(
        tmp_path,
        {
            "topics/__init__.py": "",
            "topics/publish.py": "def f():\n    from workers.errors import E\n",
            "workers/__init__.py": "",
            "workers/errors.py": "",
            "workers/a/__init__.py": "",
            "workers/a/x.py": "from ..b import y\n",
            "workers/b/__init__.py": "",
            "workers/b/y.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from workers.a import x\n",
            "workers/c.py": "from workers import a\n",
        },
    )
    found = imports_under(tmp_path, ["topics", "workers"])
    upward = violations(RULES["topics sits on schemas alone"], found)
    assert [(str(i.path), i.line, i.target) for i in upward] == [
        ("topics/publish.py", 2, "workers.errors")
    ]
    edges = folder_edges(found)
    assert cycles(edges) == {frozenset({"a", "b"})}
    assert "workers/a/x.py:1: workers.a.x imports workers.b.y" in describe(
        frozenset({"a", "b"}), edges
    )


def test_cycles_are_strongly_connected_groups() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]
    assert cycles(edges) == {frozenset({"a", "b", "c"}), frozenset({"d", "e"})}
    assert cycles([("a", "b"), ("b", "c")]) == set()
