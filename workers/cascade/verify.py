"""Re-derive the cascade's recorded decisions from the trail alone (issue 13). Pure.

The `dependencies` chain holds one `aud.dependency.changed` record per node change, grouped
in steps (a breaker record's fact, or a resync). Each record carries the open breakers after
its step, so a step is verified on its own, whatever the facts in between that changed no
node (they leave no record):

* a fact step: the cascade loaded with the open breakers *before* the fact (after, with the
  fact's breaker put back or taken out) and fed the fact must decide exactly the recorded
  changes, in order;
* a resync step: the cascade loaded with the open breakers after it must give every recorded
  node the recorded status (what it was compared with, the published one, is the recorded
  `from`).

A step's records are compared by (subject, from, to, cause).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from schemas.state import CircuitState
from workers.cascade.core import RESYNC, CascadeCore
from workers.kernels.dependency_cascade import AVAILABLE, Health, circuit_health
from workers.kernels.dependency_graph import DependencyGraph
from workers.policies.breaker_models import KeyMode

Projection = tuple[str, str, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class CascadeVerification:
    steps: int
    recorded: int
    missing: tuple[Projection, ...]
    """Recorded, not decided again."""
    extra: tuple[Projection, ...]
    """Decided again, not recorded."""

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.extra)


def verify_cascade(
    payloads: Iterable[Mapping[str, Any]], graph: DependencyGraph, key_mode: KeyMode
) -> CascadeVerification:
    """Verify the `dependencies` chain's payloads (in seq order) under `graph`."""
    steps = recorded = 0
    missing: list[Projection] = []
    extra: list[Projection] = []
    for _, group in groupby(payloads, key=lambda payload: payload["step"]):
        records = list(group)
        steps += 1
        recorded += len(records)
        want = [_projection(payload) for payload in records]
        got = _replayed(records, graph, key_mode)
        if want != got:
            missing += [p for p in want if p not in got]
            extra += [p for p in got if p not in want]
    return CascadeVerification(steps, recorded, tuple(missing), tuple(extra))


def _replayed(
    records: Sequence[Mapping[str, Any]], graph: DependencyGraph, key_mode: KeyMode
) -> list[Projection]:
    first = records[0]
    after = set(first["open_breakers"])
    if first["trigger"] == RESYNC:
        core = CascadeCore(graph, key_mode, after)
        statuses = core.kernel.statuses
        by_subject = {str(graph.nodes[nid].subject): status for nid, status in statuses.items()}
        return [
            (
                payload["subject"],
                payload["from"],
                str(by_subject.get(payload["subject"], AVAILABLE).availability),
                tuple(by_subject.get(payload["subject"], AVAILABLE).cause),
            )
            for payload in records
        ]
    key, state = first["breaker_key"], CircuitState(first["breaker_state"])
    before = after - {key} if circuit_health(state) is Health.DOWN else after | {key}
    core = CascadeCore(graph, key_mode, before)
    return [
        (decision.subject, *_statuses(decision.before, decision.after))
        for decision in core.observe(key, state, step=first["step"], at_ms=0)
    ]


def _statuses(before: Any, after: Any) -> tuple[str, str, tuple[str, ...]]:
    return str(before.availability), str(after.availability), tuple(after.cause)


def _projection(payload: Mapping[str, Any]) -> Projection:
    return (payload["subject"], payload["from"], payload["to"], tuple(payload["cause"]))
