"""The dependency cascade as a pure kernel (issue 13): which nodes are usable, given health facts.

A health fact says whether a subject (`dependency_graph.Subject`: ``vendor:openai``,
``tool:t001``, ``external:network.egress``...) is up or down; a breaker's state becomes one with
`circuit_health` (open and forced open are down; half-open is up: denying the dependents of a
half-open breaker would starve the trial calls that close it). A subject without a fact is up,
as a breaker without state is closed, and facts about subjects no node guards are not kept
(they cannot change a status, and keeping them would let any producer grow the state).

Per node, dependencies first:

* `unavailable` when its own subject is down, or a required dependency is unavailable; so a
  node is unavailable exactly when a path of required edges leads from it to a node whose
  subject is down;
* `degraded` when not unavailable but an optional dependency is not available, or a required
  one is degraded; so exactly when some path (of any edges) leads to a down subject;
* `available` otherwise.

A status carries its cause: the path from the node to the down subject's node (the first
dependency in declared order that makes it so). `cascade(graph, health)` computes every status
from scratch; `DependencyCascade.apply(change)` is the same as a kernel, ``state, fact change ->
state, status changes``: it re-evaluates only the nodes the change can reach, in evaluation
order, and returns what changed in that order, so folding any sequence of changes ends where
`cascade` of the final facts does, and the changes can be published, audited and replayed as
decisions.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from schemas.state import Availability, CircuitState
from workers.kernels.dependency_graph import DependencyGraph, Node, Subject


class Health(StrEnum):
    UP = "up"
    DOWN = "down"


_DOWN_STATES = frozenset({CircuitState.OPEN, CircuitState.FORCED_OPEN})


def circuit_health(state: CircuitState) -> Health:
    """A breaker's state as a health fact: down while calls are refused (open, forced open)."""
    return Health.DOWN if state in _DOWN_STATES else Health.UP


@dataclass(frozen=True, slots=True)
class NodeStatus:
    availability: Availability
    cause: tuple[str, ...] = ()
    """The node, the dependencies leading to the one that is down, and that one (empty when
    available); ``(node,)`` when the node's own subject is down."""

    @property
    def reason(self) -> str:
        if not self.cause:
            return "available"
        down, chain = self.cause[-1], " -> ".join(self.cause)
        if len(self.cause) == 1:
            return f"{down} is down"
        if self.availability is Availability.DEGRADED:
            return f"{down} is down, on an optional path: {chain}"
        return f"{down} is down: {chain}"


AVAILABLE = NodeStatus(Availability.AVAILABLE)


@dataclass(frozen=True, slots=True)
class FactChange:
    """A subject's health, as of now."""

    subject: Subject
    health: Health


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A node's status changed because of `fact` (the output of `DependencyCascade.apply`)."""

    node: str
    before: NodeStatus
    after: NodeStatus
    fact: FactChange


def node_status(node: Node, own: Health, statuses: Mapping[str, NodeStatus]) -> NodeStatus:
    """`node`'s status from its own subject's health and its dependencies' statuses."""
    if own is Health.DOWN:
        return NodeStatus(Availability.UNAVAILABLE, (node.id,))
    degraded: NodeStatus | None = None
    for edge in node.depends_on:
        status = statuses[edge.target]
        if status.availability is Availability.AVAILABLE:
            continue
        if status.availability is Availability.UNAVAILABLE and not edge.optional:
            return NodeStatus(Availability.UNAVAILABLE, (node.id, *status.cause))
        if degraded is None:
            degraded = NodeStatus(Availability.DEGRADED, (node.id, *status.cause))
    return degraded or AVAILABLE


def cascade(graph: DependencyGraph, health: Mapping[Subject, Health]) -> dict[str, NodeStatus]:
    """Every node's status (in evaluation order) under the facts `health`."""
    statuses: dict[str, NodeStatus] = {}
    for nid in graph.order:
        node = graph.nodes[nid]
        statuses[nid] = node_status(node, health.get(node.subject, Health.UP), statuses)
    return statuses


class DependencyCascade:
    """The statuses of one graph's nodes, kept current one fact change at a time."""

    __slots__ = ("_down", "_statuses", "graph")

    def __init__(self, graph: DependencyGraph, health: Mapping[Subject, Health] | None = None):
        self.graph = graph
        self._down = {
            subject
            for subject, fact in (health or {}).items()
            if fact is Health.DOWN and graph.node_for(subject) is not None
        }
        self._statuses = cascade(graph, self.health)

    @property
    def health(self) -> Mapping[Subject, Health]:
        """The facts kept: every subject of the graph that is down (the others are up)."""
        return MappingProxyType(dict.fromkeys(sorted(self._down), Health.DOWN))

    @property
    def statuses(self) -> Mapping[str, NodeStatus]:
        return MappingProxyType(self._statuses)

    def status(self, node_id: str) -> NodeStatus:
        return self._statuses[node_id]

    def apply(self, change: FactChange) -> list[StatusChange]:
        """Take `change` in; the nodes whose status it changes, in evaluation order."""
        node = self.graph.node_for(change.subject)
        down = change.health is Health.DOWN
        if node is None or (change.subject in self._down) == down:
            return []
        if down:
            self._down.add(change.subject)
        else:
            self._down.discard(change.subject)
        position, order = self.graph.position, self.graph.order
        pending, queued = [position[node.id]], {node.id}
        changes: list[StatusChange] = []
        while pending:
            nid = order[heapq.heappop(pending)]
            current = self.graph.nodes[nid]
            own = Health.DOWN if current.subject in self._down else Health.UP
            after = node_status(current, own, self._statuses)
            before = self._statuses[nid]
            if after == before:
                continue  # nothing further along can change through this node
            self._statuses[nid] = after
            changes.append(StatusChange(nid, before, after, change))
            for dependent in self.graph.dependents[nid]:
                if dependent not in queued:
                    queued.add(dependent)
                    heapq.heappush(pending, position[dependent])
        return changes
