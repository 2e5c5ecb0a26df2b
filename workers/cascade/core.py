"""The dependency cascade as decisions (issue 13): breaker states in, node changes out. Pure.

The kernel (`workers.kernels.dependency_cascade`) turns health facts into node statuses; this
module says where the facts come from and what a change decides:

* **Facts from breakers.** A breaker's key names one subject, by the breaker policy's key
  mode: `vendor` keys name the vendor (`vendor:openai`), `tool` keys the tool, and
  `vendor/tool` keys (the default) the tool (`openai/t001` -> `tool:t001`: that tool, where
  it is served, fails). A subject is down while any breaker naming it is open or forced open
  (`dependency_cascade.circuit_health`). Breakers naming no node of the graph are not kept.
* **Decisions.** Every node whose status changes is a `CascadeDecision`: the record for the
  `dependency-state` topic and the payload of its `aud.dependency.changed` audit record.
  Each payload carries the open breakers after its step (`open_breakers`) and the step's
  fact, so every step can be re-derived from the trail alone (`workers.cascade.verify`).
* **Resync.** A restarted cascade does not know which facts it missed: it loads the breakers'
  current states and compares the statuses with the ones last published; each difference is
  a decision whose trigger is `resync` (and a subject that left the graph is removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.state import Availability, CircuitState, DependencyState
from schemas.types import from_epoch_ms
from workers.kernels.dependency_cascade import (
    AVAILABLE,
    DependencyCascade,
    FactChange,
    Health,
    NodeStatus,
    circuit_health,
)
from workers.kernels.dependency_graph import DependencyGraph, GuardKind, Node, Subject
from workers.policies.breaker_models import KeyMode

RESYNC: Final = "resync"


def breaker_subject(key: str, mode: KeyMode) -> Subject:
    """The subject a breaker's key names under the breaker policy's key mode."""
    if mode is KeyMode.VENDOR:
        return Subject(GuardKind.VENDOR, key)
    if mode is KeyMode.TOOL:
        return Subject(GuardKind.TOOL, key)
    _vendor, _, tool = key.partition("/")
    return Subject(GuardKind.TOOL, tool or key)


@dataclass(frozen=True, slots=True)
class CascadeDecision:
    """One node's status changed (or, `node` None, its subject left the graph)."""

    subject: str
    node: Node | None
    before: NodeStatus
    after: NodeStatus
    step: str
    """What the decision belongs to: the breaker record's `topic:partition:offset`, or
    `resync@<ms>`; the decisions of one step are verified together."""
    trigger: str
    """`tool:t001 down`, `tool:t001 up`, or `resync`."""
    breaker_key: str | None
    breaker_state: CircuitState | None
    at_ms: int
    open_breakers: tuple[str, ...]
    """Every open breaker that names a node of the graph, after the step."""

    def state_record(self, policy_version: str) -> DependencyState | None:
        """The dependency-state record (None: a tombstone for a subject that left the graph)."""
        if self.node is None:
            return None
        return DependencyState(
            node=self.node.id,
            subject=self.subject,
            availability=self.after.availability,
            previous=self.before.availability,
            cause=list(self.after.cause),
            reason=self.after.reason,
            criticality=self.node.criticality,
            trigger=self.trigger,
            breaker_key=self.breaker_key,
            policy_version=policy_version,
            updated_at=from_epoch_ms(self.at_ms),
        )

    def audit_payload(self) -> dict[str, Any]:
        return {
            "node": None if self.node is None else self.node.id,
            "subject": self.subject,
            "from": str(self.before.availability),
            "to": str(self.after.availability),
            "cause": list(self.after.cause),
            "reason": self.after.reason if self.node is not None else "left the graph",
            "step": self.step,
            "trigger": self.trigger,
            "breaker_key": self.breaker_key,
            "breaker_state": None if self.breaker_state is None else str(self.breaker_state),
            "open_breakers": list(self.open_breakers),
        }


class CascadeCore:
    """The cascade of one graph, fed breaker states one at a time."""

    def __init__(
        self, graph: DependencyGraph, key_mode: KeyMode, open_breakers: Iterable[str] = ()
    ) -> None:
        self.graph = graph
        self.key_mode = key_mode
        self._open: dict[Subject, set[str]] = {}
        for key in open_breakers:
            subject = breaker_subject(key, key_mode)
            if graph.node_for(subject) is not None:
                self._open.setdefault(subject, set()).add(key)
        self.kernel = DependencyCascade(graph, dict.fromkeys(self._open, Health.DOWN))

    @property
    def open_breakers(self) -> tuple[str, ...]:
        return tuple(sorted(key for keys in self._open.values() for key in keys))

    def observe(
        self, key: str, state: CircuitState, *, step: str, at_ms: int
    ) -> list[CascadeDecision]:
        """A breaker's new state; the node changes it causes, in evaluation order."""
        subject = breaker_subject(key, self.key_mode)
        if self.graph.node_for(subject) is None:
            return []
        keys = self._open.setdefault(subject, set())
        if circuit_health(state) is Health.DOWN:
            keys.add(key)
        else:
            keys.discard(key)
        if not keys:
            del self._open[subject]
        health = Health.DOWN if subject in self._open else Health.UP
        changes = self.kernel.apply(FactChange(subject, health))
        open_now = self.open_breakers
        return [
            CascadeDecision(
                subject=str(self.graph.nodes[change.node].subject),
                node=self.graph.nodes[change.node],
                before=change.before,
                after=change.after,
                step=step,
                trigger=f"{subject} {health}",
                breaker_key=key,
                breaker_state=state,
                at_ms=at_ms,
                open_breakers=open_now,
            )
            for change in changes
        ]

    def resync(self, published: Mapping[str, NodeStatus], *, at_ms: int) -> list[CascadeDecision]:
        """The decisions that bring `published` (subject -> the status last published; a
        subject without a record is available) to the statuses of now: nodes in evaluation
        order, then subjects no node guards any more (sorted), removed."""
        step, open_now = f"{RESYNC}@{at_ms}", self.open_breakers

        def decision(subject: str, node: Node | None, after: NodeStatus) -> CascadeDecision:
            before = published.get(subject, AVAILABLE)
            return CascadeDecision(
                subject, node, before, after, step, RESYNC, None, None, at_ms, open_now
            )

        nodes = [self.graph.nodes[nid] for nid in self.graph.order]
        guarded = {str(node.subject) for node in nodes}
        changed = [
            decision(str(node.subject), node, self.kernel.status(node.id))
            for node in nodes
            if published.get(str(node.subject), AVAILABLE) != self.kernel.status(node.id)
        ]
        removed = [decision(s, None, AVAILABLE) for s in sorted(set(published) - guarded)]
        return changed + removed


def published_status(record: DependencyState) -> NodeStatus:
    """What a dependency-state record says a node's status is."""
    return NodeStatus(Availability(record.availability), tuple(record.cause))
