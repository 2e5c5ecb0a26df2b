"""A kernel's decisions as records, written once for every kernel (shell: Kafka I/O).

Each decision goes out as an output of the batch it came from (`batching.outputs`: in its
transaction in production mode): an alert masked on `alerts`, a command on `control`, a
transition's state record on the kernel's state topic; then its audit record(s), when the
kernel's spec audits it, sealed into the chain of the partition that decided it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import faust

from schemas.audit import AuditSource
from schemas.codec import encode
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.sealing import masked_alert
from workers.batching.outputs import BatchOutputs
from workers.decisions import (
    AlertDecision,
    ControlDecision,
    Decision,
    DecisionType,
    TransitionDecision,
)
from workers.shell.spec import Core, KernelSpec, StateRecord

Source = tuple[str, int]
"""The input (or routed) topic partition whose batch the records are outputs of."""
Cause = tuple[str, int, int]
"""The record a decision came from: topic, partition, offset (its audit record's source)."""


class DecisionPublisher:
    def __init__(
        self, app: faust.App, catalog: TopicCatalog, spec: KernelSpec[Any], chains: ChainBook
    ) -> None:
        self.outputs = BatchOutputs(app)
        self.chains = chains
        self.published: Counter[DecisionType] = Counter()
        self.alerts: Counter[tuple[str, str, str]] = Counter()
        """Alerts published by (kind, severity, status)."""
        self._spec = spec
        self._alerts = catalog.name(TopicName.ALERTS)
        self._control = catalog.name(TopicName.CONTROL)
        self._audit = catalog.name(TopicName.AUDIT)
        self._state = None if spec.state_topic is None else catalog.name(spec.state_topic)

    async def publish(
        self, decision: Decision, core: Core, source: Source, chain: int, cause: Cause
    ) -> None:
        """`decision` of `core` (the state of partition `chain`), caused by the record
        `cause`, as outputs of the batch of `source`."""
        self.published[decision.type] += 1
        send = self.outputs.send
        if isinstance(decision, AlertDecision):
            raw = decision.alert
            self.alerts[(raw.kind, raw.severity.value, raw.status.value)] += 1
            alert = masked_alert(self.chains.masker, raw)
            await send(source, self._alerts, decision.alert.fingerprint.encode(), encode(alert))
        elif isinstance(decision, ControlDecision):
            command = decision.command
            await send(source, self._control, command.target.encode(), encode(command))
        elif isinstance(decision, TransitionDecision) and decision.record is not None:
            assert self._state is not None, f"{decision.kernel} has no state topic"
            await send(source, self._state, decision.key.encode(), encode(decision.record))
        entry = self._spec.audit(core, decision)
        if entry is None:
            return
        records = await self.chains.seal(
            chain,
            entry.event_type,
            ts_ms=decision.ts_ms,
            severity=entry.severity,
            policy_version=decision.policy_version,
            payload=entry.payload,
            source=AuditSource(
                topic=cause[0], partition=cause[1], offset=cause[2], event_id=decision.event_id
            ),
        )
        for record in records:
            await send(source, self._audit, record.chain.encode(), encode(record))

    async def publish_states(self, records: list[StateRecord], source: Source) -> None:
        """The state records of what a batch changed, on the kernel's state topic."""
        topic = self._state
        for key, state in records:
            assert topic is not None, f"{self._spec.kernel} has no state topic"
            await self.outputs.send(source, topic, key, encode(state))
