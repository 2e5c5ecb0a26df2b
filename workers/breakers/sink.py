"""The breaker agent's I/O: accepted events in, breaker-state / alerts / audit records out.

Everything decided here is decided by `BreakerEngine` (pure); this module only publishes. One
engine and one audit chain per source partition: a partition's events, clock ticks included,
arrive in order, so its decisions do not depend on how partitions are spread over workers.
A partition's chain continues from the audit topic's last record of that chain when a worker
takes the partition over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust

from schemas.audit import AuditSource
from schemas.clock import ClockTick
from schemas.codec import encode
from schemas.state import BreakerState, CircuitState
from schemas.types import Severity
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.masking import Masker
from workers.audit.sealing import masked_alert
from workers.batching.outputs import BatchOutputs
from workers.batching.records import RawRecord
from workers.breakers.engine import BreakerEngine, BreakerRouting
from workers.cardinality import CARDINALITY_AUDIT_TYPE, is_cardinality_alert
from workers.decisions import AlertDecision, Decision, TransitionDecision
from workers.ingest.stage import IngestResult
from workers.kernels.key_cap import KeyCaps, StateKind
from workers.policies.audit_event_types import AuditPolicy
from workers.recovery import restore_breakers

log = logging.getLogger(__name__)

TRANSITION_AUDIT_TYPE = "aud.breaker.transition"


def chain_id(partition: int) -> str:
    """The audit chain of the breakers fed by one input partition."""
    return f"breakers-p{partition}"


class BreakerSink:
    """An EventSink (workers.app) running the breakers of every partition this worker owns."""

    def __init__(
        self,
        app: faust.App,
        catalog: TopicCatalog,
        policy: BreakerRouting,
        client_options: Mapping[str, Any],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
        *,
        restore_from_trail: bool = False,
        caps: KeyCaps | None = None,
    ) -> None:
        """`restore_from_trail`: rebuild a partition's breakers from the forensic audit
        trail when the worker gets it (exactly-once processing with the forensic level).
        `caps`: the worker's key caps; each partition's engine holds its share."""
        self.policy = policy
        self._caps = caps or KeyCaps()
        self._chains = ChainBook(
            client_options,
            catalog.name(TopicName.AUDIT),
            catalog.spec(TopicName.AUDIT).partitions,
            chain_id,
            masker,
            audit_policy,
        )
        self._outputs = BatchOutputs(app)
        self._state_topic = catalog.name(TopicName.BREAKER_STATE)
        self._alert_topic = catalog.name(TopicName.ALERTS)
        self._audit_topic = catalog.name(TopicName.AUDIT)
        self._tool_topic = catalog.name(TopicName.TOOL_INVOCATIONS)
        self._latency_topic = catalog.name(TopicName.LATENCY_EVENTS)
        self._tool_partitions = catalog.spec(TopicName.TOOL_INVOCATIONS).partitions
        self.engines: dict[int, BreakerEngine] = {}
        self._restore = restore_from_trail
        self._client_options = client_options
        self._audit_name = catalog.name(TopicName.AUDIT)
        self._audit_partitions = catalog.spec(TopicName.AUDIT).partitions
        self.transitions = 0
        self.alerts = 0

    async def handle(self, result: IngestResult) -> None:
        # Breakers live with the tool-invocations partition their key hashes to; latency
        # events (same key, same partition count) join them. Time comes from the ticks of
        # the tool-invocations partition only, so it moves in that partition's order.
        if not result.accepted or result.topic not in (self._tool_topic, self._latency_topic):
            return
        ticks_apply = result.topic == self._tool_topic
        engine = self.engines.get(result.partition)
        if engine is None:
            limit = self._caps.share(StateKind.BREAKERS, self._tool_partitions, result.partition)
            engine = self.engines[result.partition] = BreakerEngine(self.policy, limit)
            if self._restore:
                await restore_breakers(
                    self._client_options,
                    engine,
                    audit_topic=self._audit_name,
                    audit_partitions=self._audit_partitions,
                    tool_topic=self._tool_topic,
                    partition=result.partition,
                )
        apply = engine.apply
        for item in result.accepted:
            event = item.event
            if not ticks_apply and type(event) is ClockTick:
                continue
            decisions = apply(event)
            if decisions:
                for decision in decisions:
                    await self._publish(decision, result.partition, item.record)

    def forget_partition(self, partition: int) -> None:
        """The partition went to another worker: its breakers and chain head go stale here."""
        self.engines.pop(partition, None)
        self._chains.forget(partition)

    def current_states(self) -> list[BreakerState]:
        """Every breaker this worker holds, sorted by key."""
        states = [state for engine in self.engines.values() for state in engine.states()]
        return sorted(states, key=lambda state: state.key)

    def states_by_state(self) -> dict[str, int]:
        """How many breakers are in each state (for metrics)."""
        counts = dict.fromkeys((state.value for state in CircuitState), 0)
        for engine in self.engines.values():
            for state in engine.circuit_states():
                counts[state.value] += 1
        return counts

    async def _publish(self, decision: Decision, partition: int, record: RawRecord) -> None:
        key = decision.key.encode()
        source = (record.topic, record.partition)
        send = self._outputs.send
        if isinstance(decision, TransitionDecision):
            self.transitions += 1
            if decision.record is not None:
                await send(source, self._state_topic, key, encode(decision.record))
            await self._audit(decision, TRANSITION_AUDIT_TYPE, partition, record)
        elif isinstance(decision, AlertDecision):
            self.alerts += 1
            alert = decision.alert
            masked = masked_alert(self._chains.masker, alert)
            await send(source, self._alert_topic, alert.fingerprint.encode(), encode(masked))
            if is_cardinality_alert(decision):  # breaker_open is audited as its transition
                await self._audit(decision, CARDINALITY_AUDIT_TYPE, partition, record)

    async def _audit(
        self, decision: Decision, event_type: str, partition: int, record: RawRecord
    ) -> None:
        records = await self._chains.seal(
            partition,
            event_type,
            ts_ms=decision.ts_ms,
            severity=_audit_severity(decision),
            policy_version=decision.policy_version,
            payload=decision.to_json(),
            source=AuditSource(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_id=decision.event_id,
            ),
        )
        source = (record.topic, record.partition)
        for audit in records:
            await self._outputs.send(source, self._audit_topic, audit.chain.encode(), encode(audit))


def _audit_severity(decision: Decision) -> Severity:
    if isinstance(decision, AlertDecision):
        return decision.alert.severity
    if isinstance(decision, TransitionDecision) and decision.to_state == CircuitState.OPEN.value:
        return Severity.WARNING
    return Severity.INFO
