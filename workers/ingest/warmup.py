"""Rebuild de-duplication memory from the input partition itself (shell: Kafka I/O).

De-duplication memory lives in the worker, not in a changelog: writing every event_id to a
changelog would double the write traffic of the hot path. The input topic already holds every
id, in order, so a worker that takes over a partition (start, restart after a crash,
rebalance) re-reads the ids that precede its first batch and replays them through the same
Deduplicator; its verdicts then equal those of a worker that never stopped.

Where to start reading: the Kafka record timestamp of the first new record minus *twice* the
horizon (record time only approximates event time; the slack covers producer lag), never more
than ``dedup_max_ids`` records back (the memory cap makes older ids irrelevant anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import InputEvent
from schemas.types import epoch_ms
from workers.batching.records import RawBatch
from workers.batching.undecodable import tolerate_undecodable_batches
from workers.ingest.stage import IngestStage
from workers.ingest.validate import Refusal, check_value

_FETCH_TIMEOUT_MS = 1000


def remembered_id(value: bytes | None, model: type[InputEvent]) -> tuple[str, int] | None:
    """``(event_id, event_time_ms)`` of a record value the stage accepts from `model`'s topic
    (a tick's or an override's default id included), else None: the stage dead-lettered it
    and never remembered its id. The stage's own check (`validate.check_value`), so a restart
    decides like a worker that never stopped; it costs what the record cost the first time."""
    outcome = check_value(value, model)
    if isinstance(outcome, Refusal):
        return None
    event = outcome[0]
    return event.event_id, epoch_ms(event.ts)


def _lookback_start(
    first_offset: int, offset_for_time: int | None, beginning: int, max_ids: int
) -> int:
    start = first_offset if offset_for_time is None else offset_for_time
    return max(min(start, first_offset), beginning, first_offset - max_ids)


async def read_preceding_ids(
    client_options: Mapping[str, Any],
    batch: RawBatch,
    *,
    model: type[InputEvent],
    lookback_ms: int,
    max_ids: int,
) -> list[tuple[str, int]]:
    """``(event_id, event_time_ms)`` of the accepted records before ``batch``, in offset order
    (`model`: the topic's event model)."""
    tp = TopicPartition(batch.topic, batch.partition)
    first_offset = batch.first_offset
    if first_offset == 0:
        return []  # nothing precedes the partition's first record
    consumer = AIOKafkaConsumer(
        **client_options,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        # An undecodable batch before this one was dead-lettered: skip it here too, or the
        # partition's every first batch would fail again (`batching.undecodable`).
        tolerate_undecodable_batches(consumer)
        consumer.assign([tp])
        since = max(batch.records[0].timestamp - lookback_ms, 0)
        found = (await consumer.offsets_for_times({tp: since}))[tp]
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        start = _lookback_start(first_offset, found.offset if found else None, beginning, max_ids)
        if start >= first_offset:
            return []
        consumer.seek(tp, start)
        return await _read_until(consumer, tp, first_offset, model)
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end_offset: int, model: type[InputEvent]
) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    while True:
        fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        for record in fetched.get(tp, []):
            if record.offset >= end_offset:
                return seen
            remembered = remembered_id(record.value, model)
            if remembered is not None:
                seen.append(remembered)
        if await consumer.position(tp) >= end_offset:
            return seen


async def ensure_memory(
    stage: IngestStage, client_options: Mapping[str, Any], batch: RawBatch
) -> int | None:
    """Rebuild the partition's memory before its first batch; None when it was already there."""
    if stage.remembers(batch.topic, batch.partition):
        return None
    seen = await read_preceding_ids(
        client_options,
        batch,
        model=stage.model_for(batch.topic),
        lookback_ms=2 * stage.dedup_horizon_ms,
        max_ids=stage.dedup_max_ids,
    )
    return stage.recall(batch.topic, batch.partition, seen)
