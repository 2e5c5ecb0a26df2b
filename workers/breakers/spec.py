"""Circuit breakers as a kernel of the shell (`workers.shell.spec`): a direct kernel.

Breakers live with the tool-invocations partition their key hashes to; latency events (same
key, same partition count) join them. One engine per partition: its events, clock ticks
included, arrive in order, so its decisions do not depend on how partitions are spread over
workers. Time comes from the ticks of the tool-invocations partition only, so it moves in
that partition's order. A transition carries its `breaker-state` record and is audited
(`aud.breaker.transition`); a breaker's alerts are not (their opening transition is), but the
cardinality alarm is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.registry import Collector
from pydantic import BaseModel

from schemas.audit_names import BREAKER_TRANSITION, CARDINALITY_LIMIT
from schemas.clock import ClockTick
from schemas.state import BreakerState, CircuitState
from schemas.stream import StreamEvent
from schemas.types import Severity
from topics.catalog import TopicCatalog, TopicName
from workers.breakers.engine import BreakerEngine, BreakerRouting
from workers.cardinality import is_cardinality_alert
from workers.decisions import AlertDecision, Decision, Kernel, TransitionDecision, audit_severity
from workers.kernels.key_cap import CappedMap, KeyLimit, StateKind
from workers.metrics import BreakerCollector
from workers.shell.spec import AuditEntry, Decide, KernelSpec, KernelStats, StateRecord


class BreakerCore:
    """One input partition's breakers: tool invocations and their clock ticks move them;
    the same partition number's latency events join, without their ticks."""

    def __init__(self, engine: BreakerEngine, tool_topic: str, latency_topic: str) -> None:
        self.engine = engine
        self._tool_topic = tool_topic
        self._latency_topic = latency_topic

    @classmethod
    def of(cls, policy: BreakerRouting, catalog: TopicCatalog, limit: KeyLimit) -> BreakerCore:
        return cls(
            BreakerEngine(policy, limit),
            catalog.name(TopicName.TOOL_INVOCATIONS),
            catalog.name(TopicName.LATENCY_EVENTS),
        )

    def decider(self, topic: str) -> Decide | None:
        if topic == self._tool_topic:
            return self.engine.apply
        return self._latency if topic == self._latency_topic else None

    def _latency(self, event: StreamEvent) -> list[Decision]:
        return [] if type(event) is ClockTick else self.engine.apply(event)

    def states(self) -> Iterator[BreakerState]:
        return self.engine.states()

    def take_state_records(self) -> list[StateRecord]:
        return []  # a transition carries its own state record

    @property
    def keys(self) -> CappedMap[Any]:
        return self.engine.keys

    @property
    def extra_held(self) -> int:
        return len(self.engine) - len(self.engine.keys)


def audit_entry(core: BreakerCore, decision: Decision) -> AuditEntry | None:
    if isinstance(decision, TransitionDecision):
        opened = decision.to_state == CircuitState.OPEN.value
        severity = Severity.WARNING if opened else audit_severity(decision)
        return AuditEntry(BREAKER_TRANSITION, severity, decision.to_json())
    if isinstance(decision, AlertDecision) and is_cardinality_alert(decision):
        return AuditEntry(CARDINALITY_LIMIT, audit_severity(decision), decision.to_json())
    return None


def states_by_state(cores: Iterable[BreakerCore]) -> dict[str, int]:
    """How many breakers are in each state (for metrics)."""
    counts = dict.fromkeys((state.value for state in CircuitState), 0)
    for core in cores:
        for state in core.engine.circuit_states():
            counts[state.value] += 1
    return counts


def _collector(stats: KernelStats) -> Collector:
    cores: Any = stats.cores
    return BreakerCollector(
        lambda: states_by_state(cores()),
        stats.transitions,
        stats.alerts,
        lambda: ((key, state.value) for core in cores() for key, state in core.engine.key_states()),
    )


def _state_key(state: BaseModel) -> str:
    assert isinstance(state, BreakerState)
    return state.key


BREAKERS: KernelSpec[BreakerCore] = KernelSpec(
    kernel=Kernel.BREAKER,
    state_kind=StateKind.BREAKERS,
    inputs=(TopicName.TOOL_INVOCATIONS, TopicName.LATENCY_EVENTS),
    state_topic=TopicName.BREAKER_STATE,
    page="/breakers",
    enabled=lambda policies: True,
    audit=audit_entry,
    state_order=_state_key,
    collector=_collector,
    direct=lambda policies, catalog, limit: BreakerCore.of(policies.breakers, catalog, limit),
)
