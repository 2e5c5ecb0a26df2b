"""The dependency graph the cascade evaluates (issue 13): nodes, their edges, checked acyclic.

A node guards one subject: a module, a tool, a vendor, or an external dependency (network
egress, a secret...) that only a health fact describes. It depends on other nodes, each edge
required or optional. A `DependencyGraph` is only ever built acyclic and no deeper than its
`max_depth`, so the cascade (`dependency_cascade`) evaluates it in one pass, dependencies first
(`order`):

* every cycle is refused and named (``dep.a -> dep.b -> dep.a``, the shortest cycle through
  the component's first id), found with Tarjan's strongly connected components, iterative so
  that a chain of 10,000 nodes costs no stack;
* so is a chain of more than `max_depth` links (edges), named from its first node: a cause a
  decision carries is that chain, and a graph that deep is more likely a mistake than a design.

Problems are `GraphError`s that say which node each is about, so a loader can point them at the
node in its file. Everything is a function of the nodes alone (roots visited in id order, edges
in their declared order), so the same graph always evaluates and reports in the same order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from workers.errors import ConfigError
from workers.kernels.policy_limits import MAX_DEPENDENCY_DEPTH

DEFAULT_MAX_DEPTH: Final = 10
"""The seed's `circular_detection.max_depth`."""


class GuardKind(StrEnum):
    """What a node guards (the seed names one of module, tool or vendor per node)."""

    MODULE = "module"
    TOOL = "tool"
    VENDOR = "vendor"
    EXTERNAL = "external"
    """Not a node of the file: a reference outside the graph's namespaces (network.egress)."""


@dataclass(frozen=True, slots=True, order=True)
class Subject:
    """What a health fact is about; ``str()`` is its key, ``vendor:openai``."""

    kind: GuardKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Edge:
    """A dependency on the node `target`; an optional one degrades its dependent instead of
    making it unavailable."""

    target: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    subject: Subject
    depends_on: tuple[Edge, ...] = ()
    criticality: str | None = None
    """As the policy states it (the seed's `essential`): carried into decisions, not evaluated."""


class GraphError(ConfigError):
    """Why nodes do not form an acceptable graph: every problem, each with the node it is about."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{node}: {text}" for node, text in problems))
        self.problems = tuple(problems)


class DependencyGraph:
    """Acyclic, no chain longer than `max_depth` links, every edge to a node of the graph."""

    __slots__ = ("_by_subject", "dependents", "max_depth", "nodes", "order", "position")

    def __init__(self, nodes: Iterable[Node], max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        if not 1 <= max_depth <= MAX_DEPENDENCY_DEPTH:
            raise ConfigError(f"max_depth must be in [1, {MAX_DEPENDENCY_DEPTH}], not {max_depth}")
        by_id = _by_id(nodes)
        successors = {nid: [edge.target for edge in node.depends_on] for nid, node in by_id.items()}
        components = strongly_connected(successors)
        problems = [
            (cycle[0], "cycle: " + " -> ".join(cycle)) for cycle in _cycles(components, successors)
        ]
        if problems:
            raise GraphError(problems)
        self.order: tuple[str, ...] = tuple(component[0] for component in components)
        """Every node id, each after all of its dependencies."""
        self.nodes: Mapping[str, Node] = MappingProxyType({nid: by_id[nid] for nid in self.order})
        self.position: Mapping[str, int] = MappingProxyType(
            {n: i for i, n in enumerate(self.order)}
        )
        self.max_depth = max_depth
        _check_depth(self.nodes, max_depth)
        dependents: dict[str, list[str]] = {nid: [] for nid in self.order}
        for nid, node in self.nodes.items():
            for target in dict.fromkeys(edge.target for edge in node.depends_on):
                dependents[target].append(nid)
        self.dependents: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {nid: tuple(found) for nid, found in dependents.items()}
        )
        self._by_subject = MappingProxyType({node.subject: nid for nid, node in self.nodes.items()})

    def __len__(self) -> int:
        return len(self.nodes)

    def node_for(self, subject: Subject) -> Node | None:
        """The node guarding `subject` (a graph has at most one per subject)."""
        nid = self._by_subject.get(subject)
        return None if nid is None else self.nodes[nid]


def _by_id(nodes: Iterable[Node]) -> dict[str, Node]:
    by_id: dict[str, Node] = {}
    guarded: dict[Subject, str] = {}
    problems: list[tuple[str, str]] = []
    for node in nodes:
        if node.id in by_id:
            problems.append((node.id, "declared twice"))
        elif node.subject in guarded:
            subject = node.subject
            problems.append(
                (node.id, f"{subject.kind} {subject.name} is guarded by {guarded[subject]} already")
            )
        else:
            by_id[node.id] = node
            guarded[node.subject] = node.id
    for node in by_id.values():
        problems.extend(
            (node.id, f"depends on {edge.target}, which is not a node of the graph")
            for edge in node.depends_on
            if edge.target not in by_id
        )
    if problems:
        raise GraphError(problems)
    return by_id


def strongly_connected(successors: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """Tarjan's strongly connected components of the graph `successors` (every node a key),
    each sorted, in the order Tarjan completes them: a component after every component it
    reaches (with edges pointing at dependencies, dependencies first). Iterative: an explicit
    stack of (node, its successors not yet looked at) replaces the recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[tuple[str, ...]] = []

    def enter(node: str) -> tuple[str, Iterator[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return node, iter(successors[node])

    for root in sorted(successors):
        if root in index:
            continue
        work = [enter(root)]
        while work:
            node, pending = work[-1]
            step = next(pending, None)
            if step is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    components.append(_pop_component(node, stack, on_stack))
            elif step not in index:
                work.append(enter(step))
            elif step in on_stack:
                low[node] = min(low[node], index[step])
    return components


def _pop_component(root: str, stack: list[str], on_stack: set[str]) -> tuple[str, ...]:
    members: list[str] = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        members.append(member)
        if member == root:
            return tuple(sorted(members))


def _cycles(
    components: Iterable[tuple[str, ...]], successors: Mapping[str, Sequence[str]]
) -> list[tuple[str, ...]]:
    """One cycle per cyclic component: its first id, the shortest way back to it, its first id."""
    found = []
    for component in components:
        start = component[0]
        if len(component) > 1 or start in successors[start]:
            found.append(_shortest_cycle(start, frozenset(component), successors))
    return sorted(found)


def _shortest_cycle(
    start: str, members: frozenset[str], successors: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for step in successors[node]:
            if step == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return (*reversed(path), start)
            if step in members and step not in came_from:
                came_from[step] = node
                queue.append(step)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _check_depth(nodes: Mapping[str, Node], max_depth: int) -> None:
    """The longest chain (in links) from each node, dependencies first (`nodes` is in
    evaluation order); refuses the deepest chain when it is longer than `max_depth`."""
    depth: dict[str, int] = {}
    next_hop: dict[str, str] = {}
    for nid, node in nodes.items():
        depth[nid] = 0
        for edge in node.depends_on:
            if depth[edge.target] + 1 > depth[nid]:
                depth[nid] = depth[edge.target] + 1
                next_hop[nid] = edge.target
    deepest = min(nodes, key=lambda nid: (-depth[nid], nid), default=None)
    if deepest is None or depth[deepest] <= max_depth:
        return
    chain = [deepest]
    while chain[-1] in next_hop:
        chain.append(next_hop[chain[-1]])
    links = depth[deepest]
    text = f"a chain of {links} links is deeper than max_depth {max_depth}: " + " -> ".join(chain)
    raise GraphError([(deepest, text)])
