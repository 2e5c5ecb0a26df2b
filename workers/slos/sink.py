"""The SLO agents' I/O (DESIGN §11: route where the events are, count where the SLO is).

- `SloRouterSink` (an ingest sink): each input batch's tool invocations and latency events are
  routed to the SLOs, objectives and SLA contracts they count for, summed per tracker key and
  second, and sent to `slo-counts` keyed by tracker key, then the partition's watermark goes to
  every `slo-counts` partition (clock ticks included).
- `SloCounter` (an agent on `slo-counts`): one `SloCounting` (an `SloEngine` fed in
  event-time order under the low watermark of the input partitions) per partition; publishes
  `slo-state` for every tracker a batch touched, alerts, degradation commands on `control` and
  hash-chained audit records (`aud.slo.*`, chain `slos-p<N>`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import faust
from pydantic import BaseModel

from schemas.codec import encode
from schemas.types import Severity
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.masking import Masker
from workers.batching import BatchingApp, RawBatch
from workers.cardinality import CARDINALITY_AUDIT_TYPE, is_cardinality_alert
from workers.decisions import AlertDecision, ControlDecision, Decision, RecordDecision
from workers.ingest.stage import IngestResult
from workers.kernels.key_cap import KeyCaps, StateKind
from workers.policies.audit_event_types import AuditPolicy
from workers.policies.slos import SloPolicy
from workers.recovery import restore_counting
from workers.routed.publisher import DecisionPublisher, register_counter
from workers.routed.sender import RoutedSender
from workers.slos.counting import SloCounting
from workers.slos.records import count_batch
from workers.slos.routing import SLO_INPUTS, SloRouter, targets_of

log = logging.getLogger(__name__)


def chain_id(partition: int) -> str:
    return f"slos-p{partition}"


class SloRouterSink:
    """Routes accepted input events to `slo-counts` (an EventSink of the ingest agent)."""

    def __init__(self, app: faust.App, catalog: TopicCatalog, policy: SloPolicy) -> None:
        self.policy = policy
        self._router = SloRouter(targets_of(policy))
        self._inputs = {catalog.name(topic) for topic in SLO_INPUTS}
        self._sender = RoutedSender(
            app, catalog.name(TopicName.SLO_COUNTS), catalog.spec(TopicName.SLO_COUNTS).partitions
        )
        self.routed = 0

    def forget_source(self, topic: str, partition: int) -> None:
        self._sender.forget_source(topic, partition)

    async def handle(self, result: IngestResult) -> None:
        if result.topic not in self._inputs or not result.accepted:
            return
        records, reached, measures = count_batch(
            self._router,
            (item.event for item in result.accepted),
            source_topic=result.topic,
            source_partition=result.partition,
        )
        for record in records:
            await self._sender.send(
                (result.topic, result.partition), record.key.encode(), encode(record)
            )
        self.routed += measures
        await self._sender.watermark(result.topic, result.partition, reached)


class SloCounter:
    """Counts routed SLO measurements per `slo-counts` partition and publishes decisions."""

    def __init__(
        self,
        app: faust.App,
        catalog: TopicCatalog,
        policy: SloPolicy,
        client_options: Mapping[str, Any],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
        caps: KeyCaps | None = None,
    ) -> None:
        """`caps`: the worker's key caps; each partition's engine holds its share."""
        self.policy = policy
        self._caps = caps or KeyCaps()
        self._partition_count = catalog.spec(TopicName.SLO_COUNTS).partitions
        self.counts_topic_name = catalog.name(TopicName.SLO_COUNTS)
        self._routed_name = self.counts_topic_name
        self._client_options = client_options
        self._chains = ChainBook(
            client_options,
            catalog.name(TopicName.AUDIT),
            catalog.spec(TopicName.AUDIT).partitions,
            chain_id,
            masker,
            audit_policy,
        )
        self._topics = {
            name: catalog.name(name)
            for name in (TopicName.SLO_STATE, TopicName.ALERTS, TopicName.AUDIT, TopicName.CONTROL)
        }
        self._publisher = DecisionPublisher(app, catalog, self._chains, self._routed_name)
        self._outputs = self._publisher.outputs
        self._sources = [
            (catalog.name(topic), partition)
            for topic in SLO_INPUTS
            for partition in range(catalog.spec(topic).partitions)
        ]
        self.partitions: dict[int, SloCounting] = {}
        self.decisions = 0

    def current_states(self) -> list[BaseModel]:
        """Every tracker this worker counts, sorted by key."""
        states = [state for part in self.partitions.values() for state in part.engine.states()]
        return sorted(states, key=lambda state: str(getattr(state, "key", "")))

    def burn_rates(self) -> Iterator[tuple[str, Mapping[str, float], float]]:
        """(tracker key, burn rate per window, error budget remaining) of each burn-rate
        SLO this worker counts (for metrics)."""
        for part in self.partitions.values():
            yield from part.engine.burn_rates()

    def forget_partition(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self._chains.forget(partition)

    @property
    def unreadable(self) -> int:
        return sum(part.unreadable for part in self.partitions.values())

    async def handle(self, batch: RawBatch) -> None:
        part = self.partitions.get(batch.partition)
        if part is None:
            limit = self._caps.share(StateKind.SLOS, self._partition_count, batch.partition)
            part = self.partitions[batch.partition] = SloCounting(self.policy, self._sources, limit)
            await restore_counting(
                self._client_options, part, self._routed_name, batch.partition, batch.first_offset
            )
        source = (batch.topic, batch.partition)
        for record in batch.records:
            for decision in part.apply(record.value or b""):
                await self._publish(decision, source, record.offset)
        engine = part.engine
        touched, engine.touched = engine.touched, set()
        state_topic = self._topics[TopicName.SLO_STATE]
        for state in engine.states(touched):
            await self._outputs.send(
                source, state_topic, str(getattr(state, "key", "")).encode(), encode(state)
            )

    async def _publish(self, decision: Decision, source: tuple[str, int], offset: int) -> None:
        self.decisions += 1
        await self._publisher.publish(
            decision,
            source,
            offset,
            event_type=_audit_type(decision),
            severity=_audit_severity(decision),
            payload=decision.to_json(),
        )


def register_slo_counter(app: BatchingApp, counter: SloCounter, queue_size: int) -> None:
    register_counter(
        app,
        counter.counts_topic_name,
        counter.handle,
        name="guardstream.slos",
        queue_size=queue_size,
    )


def _audit_type(decision: Decision) -> str:
    if is_cardinality_alert(decision):
        return CARDINALITY_AUDIT_TYPE
    if isinstance(decision, RecordDecision):
        return f"aud.slo.{decision.what}"
    if isinstance(decision, ControlDecision):
        return "aud.slo.control"
    return "aud.slo.alert"


def _audit_severity(decision: Decision) -> Severity:
    if isinstance(decision, AlertDecision):
        return decision.alert.severity
    return Severity.WARNING if isinstance(decision, ControlDecision) else Severity.INFO
