"""The publishing half of a counter agent (`budget-spend`, `slo-counts`): its decisions go out
as outputs of the routed batch they came from (`batching.outputs`: in its transaction) --
alerts masked, control commands, and a hash-chained audit record per decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust

from schemas.audit import AuditSource
from schemas.codec import encode
from schemas.types import Severity
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.sealing import masked_alert
from workers.batching import BatchingApp, BatchTopic, RawBatch
from workers.batching.outputs import BatchOutputs
from workers.batching.runner import run_batches
from workers.decisions import AlertDecision, ControlDecision, Decision

Source = tuple[str, int]


class DecisionPublisher:
    def __init__(
        self, app: faust.App, catalog: TopicCatalog, chains: ChainBook, routed_topic: str
    ) -> None:
        self.outputs = BatchOutputs(app)
        self.chains = chains
        self._routed_topic = routed_topic
        self._alerts = catalog.name(TopicName.ALERTS)
        self._control = catalog.name(TopicName.CONTROL)
        self._audit = catalog.name(TopicName.AUDIT)

    async def publish(
        self,
        decision: Decision,
        source: Source,
        offset: int,
        *,
        event_type: str,
        severity: Severity,
        payload: Mapping[str, Any],
    ) -> None:
        """`decision` from the routed record at `offset` of `source` (routed topic,
        partition): its alert or command, then its audit record(s) — unless the partition's
        last owner published it already (`ChainBook.published_through`)."""
        partition = source[1]
        if offset <= await self.chains.published_through(partition):
            return
        send = self.outputs.send
        if isinstance(decision, AlertDecision):
            alert = masked_alert(self.chains.masker, decision.alert)
            await send(source, self._alerts, decision.alert.fingerprint.encode(), encode(alert))
        elif isinstance(decision, ControlDecision):
            command = decision.command
            await send(source, self._control, command.target.encode(), encode(command))
        records = await self.chains.seal(
            partition,
            event_type,
            ts_ms=decision.ts_ms,
            severity=severity,
            policy_version=decision.policy_version,
            payload=payload,
            source=AuditSource(
                topic=self._routed_topic,
                partition=partition,
                offset=offset,
                event_id=decision.event_id,
            ),
        )
        for record in records:
            await send(source, self._audit, record.chain.encode(), encode(record))


def register_counter(
    app: BatchingApp,
    topic: str,
    handle: Callable[[RawBatch], Awaitable[None]],
    *,
    name: str,
    queue_size: int,
) -> None:
    """One agent (concurrency 1: batches of a partition in order) over a routed topic."""
    batches_topic = BatchTopic(app, topics=[topic], maxsize=queue_size)

    async def count(batches: faust.StreamT[RawBatch]) -> None:
        await run_batches(app, batches, handle)

    app.agent(batches_topic, name=name, concurrency=1)(count)
