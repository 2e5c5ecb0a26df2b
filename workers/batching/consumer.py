"""Faust's aiokafka consumer with a batch-shaped drain loop.

Stock Faust drains a fetch one message at a time and awaits ``wait_first(callback(message),
suspend_flow.wait())`` for each, which creates tasks and loop iterations per message. Here a
fetch is split per partition: partitions whose every subscriber is a :class:`BatchTopic` get
one event carrying all their records; other partitions (table changelogs, Faust's own topics)
go through Faust's per-message callback unchanged.

Acking a batch as a unit reuses Faust's own gap bookkeeping: the offsets before the batch's
last record are registered as a gap, so acking the last record lets the committed offset move
past the whole batch, and never past a batch that is still being processed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence, Set
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import TPorTopicSet
from mode import ServiceT

from workers.batching.gate import CommitGate
from workers.batching.migration import migration_of
from workers.batching.records import RawBatch, RawRecord
from workers.batching.timing import BatchTimings
from workers.batching.topic import BatchTopic
from workers.batching.undecodable import (
    UndecodableBatch,
    take_all,
    tolerate_undecodable_batches,
    with_placeholders,
)

# How long the broker may hold a fetch that found no data. aiokafka keeps one fetch in flight
# per broker, covering every assigned partition that has nothing buffered; Faust pins this to
# 1500 ms, so whenever a fetch includes only idle partitions (a quiet input topic), the busy
# ones wait up to 1.5 s for their next records. Measured: stalls of 1-1.5 s mid-backlog.
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    undecodable: deque[UndecodableBatch] | None = None
    """Batches the fetcher could not decode, reported for the drain loop (set at start)."""

    async def on_start(self) -> None:
        await super().on_start()
        # The fetcher exists once the consumer has started (in this thread's loop): from now
        # on a batch that cannot be decoded is reported and skipped instead of raised out of
        # every fetch (`batching.undecodable`).
        self.undecodable = tolerate_undecodable_batches(self._ensure_consumer())

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher, which happens later.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchingConsumer(faust_aiokafka.Consumer):
    _rebalances = 0
    """Revocations and assignments so far: what `_still_in` compares (a lone member's rejoin
    can keep its group generation, so Faust's generation id does not tell every rebalance)."""
    _assignments = 0
    """Assignments so far: the generation a delivered batch carries (`batching.generation`).
    Counted at the assignment, not the revocation: a revocation waits for the batches in
    flight to finish and commits them, so they must still be allowed to send."""

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def force_commit(
        self, topics: TPorTopicSet | None = None, start_new_transaction: bool = True
    ) -> bool:
        # Every commit path (timer, commit_every, rebalance, shutdown) ends here.
        if migration_of(self.app).check_blocked():
            return False  # a transaction was lost: nothing is committed until the rejoin
        gate: CommitGate = self.app.commit_gate  # type: ignore[attr-defined]
        timings: BatchTimings = self.app.timings  # type: ignore[attr-defined]
        waiting = time.perf_counter()
        async with gate.commit():
            timings.commit_wait.observe(time.perf_counter() - waiting)
            with timings.commit.timing():
                committed: bool = await super().force_commit(
                    topics, start_new_transaction=start_new_transaction
                )
        return committed

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._rebalances += 1
        self._assignments += 1
        # Acks and read positions recorded since the revocation are stale: agents finishing
        # batches of the previous generation ack them after Faust forgot the partitions, and
        # a kept partition would otherwise commit or skip past records it must read again.
        for tp in assigned:
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
            self._read_offset.pop(tp, None)
            # Faust reads the committed offsets again (`perform_seek`) but keeps a stale one
            # where the broker has none: one a failed commit recorded (`_commit_offsets`).
            self._committed_offset.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)
        migration_of(self.app).on_assigned()

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        committed: bool = await super()._commit_offsets(
            offsets, start_new_transaction=start_new_transaction
        )
        if not committed:
            # Faust records the offsets as committed whether the commit succeeded or not.
            # Left there, the records before them are never acked again: read again from the
            # offset that really is committed, they were processed, their outputs sent into
            # a transaction that never commits (measured: a zombie's partition whose sixteen
            # records never reached the trail, their transaction aborted by the broker's
            # timeout a minute later). Unknown is what it is until the next seek.
            for tp in offsets:
                self._committed_offset.pop(tp, None)
        return committed

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._rebalances += 1
        await super().on_partitions_revoked(revoked)
        migration_of(self.app).on_revoked()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched, active_partitions = await self._wait_next_records(timeout=1.0)
                records = self._with_undecodable(fetched)
                # A fetch can return at once many times in a row; let other tasks run.
                await self.sleep(0)
                if self.should_stop or not records:
                    continue
                if not self.flow_active:
                    await self._seek_back_after_pause(records)
                    continue
                await self._deliver_fetch(records, active_partitions)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _seek_back_after_pause(self, dropped: Mapping[TP, Sequence[Any]]) -> None:
        """Rewind so that the records fetched while flow was stopped are fetched again."""
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning("exception performing seek when flow not active %r", exc)
            return
        # aiokafka's seek_to_committed leaves a partition where it is when nothing (or 0)
        # is committed for it, so stock Faust loses what it dropped there. Measured: a
        # zombie's two latency-events partitions, assigned anew and fetched before flow
        # resumed, whose sixteen clock ticks each never reached the trail.
        assigned = self.assignment()
        for tp, tp_records in dropped.items():
            if tp_records and tp in assigned and not self._committed_offset.get(tp):
                await self.seek(tp, tp_records[0].offset)

    async def _deliver_fetch(
        self, records: Mapping[TP, Sequence[Any]], active_partitions: Set[TP] | None
    ) -> None:
        generation_id = self._rebalances
        for tp, tp_records in records.items():
            if not self._still_in(generation_id):
                return  # a rebalance started; the rest is refetched after it
            if not (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            fresh = self._unread(tp, tp_records)
            if not fresh:
                continue
            channels = self._batch_channels(tp)
            if channels is not None:
                await self._deliver_batch(tp, fresh, channels, generation_id)
            else:
                await self._deliver_one_by_one(tp, fresh, generation_id)

    def _still_in(self, generation_id: int) -> bool:
        """Whether records fetched at `generation_id` (a count of `_rebalances`) may still be
        delivered: flow is on and no rebalance has happened since. Every await of a delivery
        can outlast a rebalance (a commit blocked through a broker outage: measured 14 s), and
        what it does after must then not happen: a stale batch in the new generation's queue,
        or its read offset recorded after the assignment reset them, which made the new
        generation skip the records below it (latency-events[2]'s first three, never
        processed)."""
        return self.flow_active and self._rebalances == generation_id

    def _batch_channels(self, tp: TP) -> Set[BatchTopic] | None:
        """The partition's subscribers when every one takes batches, else None."""
        # The conductor's partition -> subscribers index (no public accessor in Faust).
        channels = cast(Any, self.app.topics)._tp_index.get(tp)
        if channels and all(isinstance(channel, BatchTopic) for channel in channels):
            return cast(Set[BatchTopic], channels)
        return None

    def _with_undecodable(
        self, records: Mapping[TP, Sequence[Any]] | None
    ) -> Mapping[TP, Sequence[Any]]:
        """`records` with a placeholder for each batch the fetcher could not decode: in a
        batch partition it is dead-lettered by the ingest stage and acked with the batch (the
        range is skipped, DESIGN §10); other partitions (Faust's own) just skip the range."""
        found = cast(_ConsumerThread, self._thread).undecodable
        if not found:
            return records or {}
        placeholders = []
        for batch in take_all(found):
            batched = self._batch_channels(TP(batch.topic, batch.partition)) is not None
            self.log.error("%s; %s", batch.describe(), "dead-lettered" if batched else "skipped")
            if batched:
                placeholders.append(batch.placeholder())
        return with_placeholders(records, placeholders)

    def _unread(self, tp: TP, tp_records: Sequence[RawRecord]) -> Sequence[RawRecord]:
        read_offset = self._read_offset[tp]
        if read_offset is None or tp_records[0].offset >= read_offset:
            return tp_records
        return [record for record in tp_records if record.offset >= read_offset]

    async def _deliver_batch(
        self,
        tp: TP,
        tp_records: Sequence[RawRecord],
        channels: Set[BatchTopic],
        generation_id: int,
    ) -> None:
        first, last = tp_records[0].offset, tp_records[-1].offset
        await self._mark_skipped_offsets(tp, first)
        if last > first:
            await self._add_gap(tp, first, last - 1)
        await self._maybe_commit()
        if not self._still_in(generation_id):
            return
        message: Message = self._to_message(tp, tp_records[-1])
        message.incref(len(channels))
        batch = RawBatch(tp.topic, tp.partition, tp_records, generation=self._assignments)
        event = self.app.create_event(message.key, batch, message.headers, message)
        for channel in channels:
            try:
                await channel.queue.put(event)
            except asyncio.CancelledError:
                if _this_task_is_cancelled():
                    raise
                # A rebalance cleared the agents' queues (flow_control.clear() cancels
                # waiting putters). Nothing of the batch was acked: whoever owns the
                # partition next fetches it again from the committed offset.
                return
        if self._rebalances == generation_id:
            self._read_offset[tp] = last

    async def _deliver_one_by_one(
        self, tp: TP, tp_records: Sequence[RawRecord], generation_id: int
    ) -> None:
        callback = self.callback
        for record in tp_records:
            await self._mark_skipped_offsets(tp, record.offset)
            await self._maybe_commit()
            if not self._still_in(generation_id):
                return
            message = self._to_message(tp, record)
            await self.wait_first(callback(message), self.suspend_flow.wait())
            if self._rebalances != generation_id:
                return
            self._read_offset[tp] = record.offset

    async def _mark_skipped_offsets(self, tp: TP, next_offset: int) -> None:
        # Offsets with no record (transaction markers, compaction) must still count as acked.
        read_offset = self._read_offset[tp]
        if (
            read_offset
            and next_offset - read_offset > 1
            and self.app.topics.acks_enabled_for(tp.topic)
        ):
            await self._add_gap(tp, read_offset + 1, next_offset - 1)

    async def _maybe_commit(self) -> None:
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()


def _this_task_is_cancelled() -> bool:
    """Whether the running task was cancelled (as opposed to a future it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = ["BatchingConsumer"]
