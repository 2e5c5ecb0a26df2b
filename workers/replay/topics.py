"""Replay from the input topics over a time range (issue 6): `replay --source topics`.

The records of tool-invocations, cost-events and latency-events whose Kafka timestamp lies in
[from, to] (start offsets found with offsets_for_times, read up to the end offsets taken at
the start) are replayed through the worker's own path: the ingest stage (validation,
dead-lettering, de-duplication) and then `PipelineReplay` (breakers, budget and SLO routing and
counting). The merge order is deterministic: partition numbers in turn, and within a partition
number the topics' records by (timestamp, topic, offset), in batches of one topic-partition;
the same range always gives the same decisions. Kernels start empty at `from`: decisions that
depend on earlier history (an open breaker, a budget's spend so far) can differ from what the
worker decided; the forensic audit trail (`--source audit`) has no such gap.

A record batch the consumer cannot decode (unknown codec, missing codec library, corrupt
payload or CRC) is read as the worker reads it (`batching.undecodable`): its offset range
becomes the worker's placeholder, which the ingest stage dead-letters with the worker's reason,
and the partition carries on. When `from` falls inside such a batch, its range starts where
replay started reading.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from topics.catalog import INPUT_TOPICS, TopicCatalog
from workers.batching.records import RawBatch, RawRecord, StoredRecord
from workers.batching.undecodable import (
    UndecodableBatch,
    UndecodableRecord,
    take_all,
    tolerate_undecodable_batches,
    with_placeholders,
)
from workers.decisions import Decision
from workers.ingest.stage import IngestStage
from workers.replay.pipeline import PipelineReplay

_FETCH_TIMEOUT_MS = 500
_BATCH = 10_000

_log = logging.getLogger(__name__)


async def read_range(
    client_options: Mapping[str, Any], catalog: TopicCatalog, from_ms: int, to_ms: int
) -> list[RawRecord]:
    """Every committed input record with a Kafka timestamp in [from_ms, to_ms], and a
    placeholder for each undecodable batch among them (see the module docstring)."""
    consumer = AIOKafkaConsumer(
        **client_options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        undecodable = tolerate_undecodable_batches(consumer)
        tps = [
            TopicPartition(catalog.name(topic), partition)
            for topic in INPUT_TOPICS
            for partition in range(catalog.spec(topic).partitions)
        ]
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
        ends = await consumer.end_offsets(tps)
        records: list[RawRecord] = []
        for tp in tps:
            start = starts.get(tp)
            if start is None or start.offset >= ends[tp]:
                continue  # nothing at or after from_ms
            consumer.assign([tp])
            consumer.seek(tp, start.offset)
            await _read_partition(consumer, undecodable, tp, ends[tp], to_ms, records)
        return records
    finally:
        await consumer.stop()


async def _read_partition(
    consumer: AIOKafkaConsumer,
    undecodable: deque[UndecodableBatch],
    tp: TopicPartition,
    end_offset: int,
    to_ms: int,
    into: list[RawRecord],
) -> None:
    """Append `tp`'s records from the consumer's position up to `end_offset` or the first
    one published after `to_ms`."""
    while await consumer.position(tp) < end_offset:
        fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        # Only `tp` is assigned: whatever the fetcher could not decode is of this partition.
        placeholders = [batch.placeholder() for batch in take_all(undecodable)]
        for record in with_placeholders(fetched, placeholders).get(tp, []):
            if record.offset >= end_offset or record.timestamp > to_ms:
                return
            if isinstance(record, UndecodableRecord):
                _log.error("%s; dead-lettered", record.batch.describe())  # the worker's line
                into.append(record)
            else:
                into.append(_stored(record))


def _stored(record: Any) -> StoredRecord:
    """An aiokafka ConsumerRecord without what replay does not read (headers, sizes)."""
    return StoredRecord(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value
    )


def merged_batches(records: Iterable[RawRecord]) -> Iterator[RawBatch]:
    """Batches in the deterministic merge order (see the module docstring)."""
    by_partition: dict[int, list[RawRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    for partition in sorted(by_partition):
        ordered = sorted(by_partition[partition], key=lambda r: (r.timestamp, r.topic, r.offset))
        start = 0
        while start < len(ordered):
            topic = ordered[start].topic
            end = start
            while end < len(ordered) and ordered[end].topic == topic and end - start < _BATCH:
                end += 1
            # Within a topic-partition, offset order (the order the worker reads).
            run = sorted(ordered[start:end], key=lambda r: r.offset)
            yield RawBatch(topic, partition, run)
            start = end


def replay_records(
    records: Sequence[RawRecord], stage: IngestStage, pipeline: PipelineReplay
) -> Iterator[Decision]:
    """The decisions of the worker's path over `records`."""
    for batch in merged_batches(records):
        result = stage.process(batch)
        yield from pipeline.batch(
            batch.topic, batch.partition, [item.event for item in result.accepted]
        )
