"""`guardstream cascade`: the dependency cascade's one writer (shell: Kafka I/O).

Breakers live on many partitions, worked on by many workers; whether a tool is usable
depends on all of them. So the cascade is a process of its own that reads every partition of
`breaker-state` (committed records only) and is the single writer of the one-partition
`dependency-state` topic and of the `dependencies` audit chain.

- **One writer**: a transactional producer with a fixed id (`<app id>-cascade`). Starting it
  fences an older instance and aborts what that one left open; a fenced instance stops (it
  never fights back), so two started by mistake cannot fork the chain.
- **Exactly once without offsets**: the cascade keeps no consumer group. At every start it
  reads `dependency-state` (what was published), the head of its audit chain, and every
  breaker's current state, and publishes the difference (`CascadeCore.resync`). A crash
  anywhere therefore loses and repeats nothing: what a dead instance published is read
  back, what it did not is decided again.
- **Then it follows** `breaker-state` from where that read ended; the decisions of each fetched
  batch (state records and audit records) commit in one transaction.
- Kafka errors other than fencing, and a broker gone after the first resync, restart the
  cycle (resync included) after a capped, jittered backoff; a broker never reached at start
  is an error (exit 5). Unreadable breaker records are logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from pydantic import ValidationError

from schemas import audit_names as names
from schemas.audit import AuditRecord, AuditSource
from schemas.codec import encode
from schemas.state import Availability, BreakerState, CircuitState, DependencyState
from schemas.types import Severity, epoch_ms
from topics.catalog import TopicCatalog, TopicName
from topics.compacted import latest_values, records_to_end
from topics.connect import start_client, wait_for_topics
from topics.errors import BrokerUnavailableError
from workers.audit.chain import AuditChain
from workers.audit.recorded_input import CASCADE_CHAIN
from workers.audit.recover import last_record
from workers.audit.sealing import seal_masked
from workers.cascade.core import CascadeCore, CascadeDecision, published_status
from workers.kernels.dependency_cascade import Health, NodeStatus, circuit_health
from workers.masking.masker import Masker
from workers.policies.policy_set import PolicySet
from workers.stopping import stopped_within

log = logging.getLogger(__name__)

CHAIN: Final = CASCADE_CHAIN
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
_FETCH_TIMEOUT_MS = 500
_MAX_RECORDS = 2_000


class CascadeFenced(Exception):
    """Another cascade started with the same app id: this one stops."""


@dataclass(slots=True)
class CascadeCounters:
    breaker_records: int = 0
    unreadable: int = 0
    decisions: int = 0
    resyncs: int = 0
    restarts: int = 0


class CascadeRunner:
    def __init__(
        self,
        client_options: Mapping[str, Any],
        bootstrap: str,
        *,
        app_id: str,
        catalog: TopicCatalog,
        policies: PolicySet,
        masker: Masker,
    ) -> None:
        self.client_options = client_options
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.catalog = catalog
        self.policies = policies
        self.masker = masker
        self.counters = CascadeCounters()
        self.resynced = asyncio.Event()
        """Set once the first resync is committed (tests and the demo wait for it)."""
        self._breaker_topic = catalog.name(TopicName.BREAKER_STATE)
        self._state_topic = catalog.name(TopicName.DEPENDENCY_STATE)
        self._audit_topic = catalog.name(TopicName.AUDIT)

    async def run(self, stopping: asyncio.Event) -> None:
        """Cascade until `stopping` is set; CascadeFenced when another instance took over."""
        backoff = BACKOFF_FIRST_S
        while not stopping.is_set():
            try:
                await self._cycle(stopping)
                return
            except ProducerFenced as exc:
                raise CascadeFenced(f"another cascade ({self.app_id}-cascade) took over") from exc
            except (KafkaError, BrokerUnavailableError) as exc:
                if isinstance(exc, BrokerUnavailableError) and not self.resynced.is_set():
                    raise  # never reached the broker: a wrong address, say so (exit 5)
                self.counters.restarts += 1
                log.warning("cascade restarting in %.1f s after a Kafka error: %r", backoff, exc)
                if await stopped_within(stopping, backoff * random.uniform(0.5, 1.0)):
                    return
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _cycle(self, stopping: asyncio.Event) -> None:
        producer = AIOKafkaProducer(
            **self.client_options,
            transactional_id=f"{self.app_id}-cascade",
            enable_idempotence=True,
        )
        await start_client(producer, self.bootstrap, producer.stop)
        try:
            consumer = AIOKafkaConsumer(
                **self.client_options,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            await start_client(consumer, self.bootstrap, consumer.stop)
            try:
                await self._cascade(producer, consumer, stopping)
            finally:
                await consumer.stop()
        finally:
            await producer.stop()

    async def _cascade(
        self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, stopping: asyncio.Event
    ) -> None:
        wanted = (self._breaker_topic, self._state_topic, self._audit_topic)
        if not await wait_for_topics(consumer, wanted, stopping, log):
            return
        partitions = [
            TopicPartition(self._breaker_topic, p)
            for p in range(self.catalog.spec(TopicName.BREAKER_STATE).partitions)
        ]
        consumer.assign(partitions)
        # The producer is started (so any older writer is fenced, its transaction aborted)
        # before anything is read back: what follows is final.
        last = await last_record(
            self.client_options,
            self._audit_topic,
            self.catalog.spec(TopicName.AUDIT).partitions,
            CHAIN,
        )
        chain = AuditChain.after(last) if last is not None else AuditChain(CHAIN)
        published = await self._published()
        breakers = await self._breakers_to_end(consumer, partitions)
        graph = self.policies.dependencies.graph
        core = CascadeCore(
            graph,
            self.policies.breakers.key,
            [key for key, state in breakers.items() if _is_down(state)],
        )
        at_ms = max(
            (epoch_ms(state.updated_at) for state in breakers.values()),
            default=int(time.time() * 1000),
        )
        self.counters.resyncs += 1
        await self._publish(producer, chain, core.resync(published, at_ms=at_ms), None)
        self.resynced.set()
        log.info(
            "cascade resynced: %d node(s), %d breaker(s) open in the graph",
            len(graph),
            len(core.open_breakers),
        )
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=_FETCH_TIMEOUT_MS, max_records=_MAX_RECORDS)
            for tp, records in fetched.items():
                decisions = [d for r in records for d in self._observe(core, tp, r)]
                await self._publish(producer, chain, decisions, tp)

    def _observe(
        self, core: CascadeCore, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]
    ) -> list[CascadeDecision]:
        self.counters.breaker_records += 1
        step = f"{tp.topic}:{tp.partition}:{record.offset}"
        if record.value is None and record.key is not None:
            # A tombstone: the worker forgot the key, so it no longer refuses calls (the
            # resync reads it the same way: the key's state is gone).
            key = record.key.decode(errors="replace")
            return core.observe(key, CircuitState.CLOSED, step=step, at_ms=record.timestamp)
        state = self._breaker_state(record)
        if state is None:
            return []
        return core.observe(state.key, state.state, step=step, at_ms=epoch_ms(state.updated_at))

    def _breaker_state(self, record: ConsumerRecord[bytes, bytes]) -> BreakerState | None:
        if record.value is None:
            return None  # a tombstone: the worker forgot the key (it was closed)
        try:
            return BreakerState.model_validate_json(record.value)
        except ValidationError as exc:
            self.counters.unreadable += 1
            log.warning("unreadable breaker-state record at offset %d: %s", record.offset, exc)
            return None

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        chain: AuditChain,
        decisions: Sequence[CascadeDecision],
        tp: TopicPartition | None,
    ) -> None:
        if not decisions:
            return
        version = self.policies.dependencies.version
        head = (chain.seq, chain.prev_hash)
        try:
            async with producer.transaction():
                for decision in decisions:
                    record = decision.state_record(version)
                    await producer.send(
                        self._state_topic,
                        None if record is None else encode(record),
                        key=decision.subject.encode(),
                    )
                    for sealed in self._sealed(chain, decision, version, tp):
                        await producer.send(self._audit_topic, encode(sealed), key=CHAIN.encode())
        except BaseException:
            chain.seq, chain.prev_hash = head  # nothing of it was committed
            raise
        self.counters.decisions += len(decisions)
        for decision in decisions:
            log.info(
                "dependency %s %s -> %s (%s)",
                decision.subject,
                decision.before.availability,
                decision.after.availability,
                decision.trigger,
            )

    def _sealed(
        self,
        chain: AuditChain,
        decision: CascadeDecision,
        version: str,
        tp: TopicPartition | None,
    ) -> list[AuditRecord]:
        unavailable = decision.after.availability is Availability.UNAVAILABLE
        source = None
        if tp is not None and decision.step.count(":") >= 2:
            offset = int(decision.step.rsplit(":", 1)[1])
            source = AuditSource(topic=tp.topic, partition=tp.partition, offset=offset)
        return seal_masked(
            chain,
            self.masker,
            names.DEPENDENCY_CHANGED,
            ts_ms=decision.at_ms,
            severity=Severity.WARNING if unavailable else Severity.INFO,
            policy_version=version,
            payload=decision.audit_payload(),
            source=source,
            policy=self.policies.audit,
        )

    async def _published(self) -> dict[str, NodeStatus]:
        values = await latest_values(self.client_options, self.bootstrap, self._state_topic, 1)
        published = {}
        for key, value in values.items():
            try:
                published[key.decode()] = published_status(
                    DependencyState.model_validate_json(value)
                )
            except (ValidationError, UnicodeDecodeError) as exc:
                log.warning("unreadable dependency-state record %r: %s", key, exc)
        return published

    async def _breakers_to_end(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> dict[str, BreakerState]:
        """Every breaker's latest state; the consumer stays where the read ended."""
        latest: dict[str, BreakerState] = {}
        async for record in records_to_end(consumer, partitions):
            self.counters.breaker_records += 1
            if record.key is None:
                continue
            state = self._breaker_state(record)
            if state is None:
                latest.pop(record.key.decode(errors="replace"), None)
            else:
                latest[state.key] = state
        return latest


def _is_down(state: BreakerState) -> bool:
    return circuit_health(state.state) is Health.DOWN
