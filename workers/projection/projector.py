"""The projector: reads the compacted state topics and keeps Redis equal to them (shell).

A process of its own (`guardstream project`), not an agent in the worker: a Redis outage then
cannot stop or slow a decision, whatever the projector does about it, and a deployment can
run two projectors for availability (updates are idempotent and never go backwards). It
reads committed records only, so Redis never shows a decision an exactly-once worker did not
commit. It keeps no consumer group: where it stands is recorded in Redis itself (the meta
record's offsets, written by the same script as the updates), so the copy and its position
can never disagree, and a Redis that lost the copy has lost the position with it.

- Start: a projection in Redis resumes at its offsets; none (first start, FLUSHALL, a
  restart without persistence), or offsets past a topic's end (topics created anew), and it
  rebuilds: wipe the prefix, read every state topic from the beginning.
- Redis unreachable or refusing: the batch is retried with capped exponential backoff while
  the lag grows (metrics); a script reporting the meta record gone triggers a rebuild.
- Unreadable state records are counted and skipped (guardstream writes these topics; one
  bad record must not stall the projection).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from redis.exceptions import RedisError

from topics.catalog import TopicCatalog, TopicName
from topics.connect import start_client, wait_for_topics
from workers.projection.layout import Surface
from workers.projection.store import ProjectionLost, ProjectionStore
from workers.projection.updates import UnreadableState, Update, coalesced, update_of
from workers.stopping import stopped_within

log = logging.getLogger(__name__)

SURFACES: Mapping[TopicName, Surface] = {
    TopicName.BREAKER_STATE: Surface.BREAKER,
    TopicName.BUDGET_STATE: Surface.BUDGET,
    TopicName.SLO_STATE: Surface.SLO,
    TopicName.DEPENDENCY_STATE: Surface.DEPENDENCY,
}
MAX_RECORDS_PER_BATCH = 5_000
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
_FETCH_TIMEOUT_MS = 200
IDLE_CHECK_S = 1.0
"""With nothing to project, how often the projector asks Redis whether it still holds the
projection (a FLUSHALL or an empty restart is otherwise only seen at the next update)."""

T = TypeVar("T")


@dataclass(slots=True)
class ProjectorCounters:
    """What the projector has done, for /metrics (plain numbers; read when scraped)."""

    records: int = 0
    updates: int = 0
    """Hashes changed in Redis (records older than what a hash held change nothing)."""
    unreadable: int = 0
    rebuilds: int = 0
    redis_errors: int = 0
    lag_records: int = 0
    """State records published and not yet projected."""
    lag_seconds: float = 0.0
    """Age of the oldest record of the batch being applied (0 when caught up)."""
    last_update_unixtime: float | None = None


class Projector:
    def __init__(
        self,
        client_options: Mapping[str, object],
        bootstrap: str,
        catalog: TopicCatalog,
        store: ProjectionStore,
        counters: ProjectorCounters | None = None,
    ) -> None:
        self.client_options = client_options
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.store = store
        self.counters = counters or ProjectorCounters()
        self.caught_up = asyncio.Event()
        """Set whenever Redis holds everything published when the last fetch began."""
        self._projected: dict[TopicPartition, int] = {}
        self._checked_at = 0.0
        self._surface_of = {catalog.name(topic): surface for topic, surface in SURFACES.items()}

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            **self.client_options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await start_client(consumer, self.bootstrap, consumer.stop)
        try:
            partitions = await self._partitions(consumer, stopping)
            consumer.assign(partitions)
            await self._start_position(consumer, partitions, stopping)
            while not stopping.is_set():
                await self._project_next(consumer, partitions, stopping)
        finally:
            await consumer.stop()

    async def _partitions(
        self, consumer: AIOKafkaConsumer, stopping: asyncio.Event
    ) -> list[TopicPartition]:
        """Every partition of the state topics (as many as the catalog says: the worker
        refuses to start on topics that differ), once the worker has created them."""
        if not await wait_for_topics(consumer, self._surface_of, stopping, log):
            return []
        return [
            TopicPartition(self.catalog.name(topic), partition)
            for topic in SURFACES
            for partition in range(self.catalog.spec(topic).partitions)
        ]

    async def _start_position(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Sequence[TopicPartition],
        stopping: asyncio.Event,
    ) -> None:
        positions = await self._redis(self.store.positions, stopping)
        ends = await consumer.end_offsets(list(partitions))
        if positions is None or any(positions.get(_source(tp), 0) > ends[tp] for tp in partitions):
            await self._rebuild(consumer, partitions, stopping)
            return
        for tp in partitions:
            self._projected[tp] = positions.get(_source(tp), 0)
            consumer.seek(tp, self._projected[tp])
        log.info("projection resumed at %s", positions)

    async def _rebuild(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Sequence[TopicPartition],
        stopping: asyncio.Event,
    ) -> None:
        self.counters.rebuilds += 1
        meta = {
            "rebuilt_at_ms": str(int(time.time() * 1000)),
            "rebuilds": str(self.counters.rebuilds),
        }
        await self._redis(lambda: self.store.reset(meta), stopping)
        for tp in partitions:
            self._projected[tp] = 0
        await consumer.seek_to_beginning(*partitions)
        log.warning("projection rebuilding from the beginning of the state topics")

    async def _project_next(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Sequence[TopicPartition],
        stopping: asyncio.Event,
    ) -> None:
        fetched = await consumer.getmany(
            timeout_ms=_FETCH_TIMEOUT_MS, max_records=MAX_RECORDS_PER_BATCH
        )
        records = [record for batch in fetched.values() for record in batch]
        if records:
            self.counters.records += len(records)
            self.counters.lag_seconds = max(
                0.0, time.time() - min(r.timestamp for r in records) / 1000
            )
            positions = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
            try:
                await self._apply(self._updates(records), positions, stopping)
            except ProjectionLost:
                await self._rebuild(consumer, partitions, stopping)
                return
        elif time.monotonic() - self._checked_at >= IDLE_CHECK_S:
            self._checked_at = time.monotonic()
            if await self._redis(self.store.held, stopping) is False:
                await self._rebuild(consumer, partitions, stopping)
                return
        await self._measure_lag(consumer, partitions)

    def _updates(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Update]:
        layout = self.store.layout
        updates: list[Update] = []
        for record in records:
            if record.key is None:
                self.counters.unreadable += 1
                continue
            try:
                updates.append(
                    update_of(
                        layout,
                        self._surface_of[record.topic],
                        f"{record.topic}:{record.partition}",
                        record.offset,
                        record.key,
                        record.value,
                    )
                )
            except UnreadableState as exc:
                self.counters.unreadable += 1
                log.warning(
                    "skipping an unreadable state record %s:%s@%s: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
        return coalesced(updates)

    async def _apply(
        self,
        updates: Sequence[Update],
        positions: Mapping[TopicPartition, int],
        stopping: asyncio.Event,
    ) -> None:
        now = time.time()
        meta = {
            "updated_at_ms": str(int(now * 1000)),
            "lag_seconds": f"{self.counters.lag_seconds:.3f}",
        }
        by_source = {_source(tp): offset for tp, offset in positions.items()}
        applied = await self._redis(lambda: self.store.apply(updates, by_source, meta), stopping)
        if applied is None:
            return
        self.counters.updates += applied
        self.counters.last_update_unixtime = now

    async def _measure_lag(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> None:
        """Records published and not projected. Every record returned so far is applied, so
        the consumer's position is what Redis holds (past transaction markers too, which
        the offsets of the last records applied would count as lag for ever)."""
        lag = 0
        for tp in partitions:
            self._projected[tp] = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - self._projected.get(tp, 0))
        self.counters.lag_records = lag
        if lag == 0:
            self.counters.lag_seconds = 0.0
            self.caught_up.set()
        else:
            self.caught_up.clear()

    async def _redis(self, call: Callable[[], Awaitable[T]], stopping: asyncio.Event) -> T | None:
        """`call()` retried through Redis errors with capped exponential backoff (jittered, so
        projectors restarted together do not retry in step); None if stopping first."""
        delay = BACKOFF_FIRST_S
        while not stopping.is_set():
            try:
                return await call()
            except ProjectionLost:
                raise
            except (RedisError, OSError) as exc:
                self.counters.redis_errors += 1
                log.warning("redis: %s; retrying in %.1f s", exc, delay)
                if await stopped_within(stopping, delay * random.uniform(0.5, 1.0)):
                    return None
                delay = min(delay * 2, BACKOFF_MAX_S)
        return None


def _source(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"
