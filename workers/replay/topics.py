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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from topics.catalog import INPUT_TOPICS, TopicCatalog
from workers.batching.records import RawBatch, StoredRecord
from workers.decisions import Decision
from workers.ingest.stage import IngestStage
from workers.replay.pipeline import PipelineReplay

_FETCH_TIMEOUT_MS = 500
_BATCH = 10_000


async def read_range(
    client_options: Mapping[str, Any], catalog: TopicCatalog, from_ms: int, to_ms: int
) -> list[StoredRecord]:
    """Every committed input record with a Kafka timestamp in [from_ms, to_ms]."""
    consumer = AIOKafkaConsumer(
        **client_options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(catalog.name(topic), partition)
            for topic in INPUT_TOPICS
            for partition in range(catalog.spec(topic).partitions)
        ]
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
        ends = await consumer.end_offsets(tps)
        records: list[StoredRecord] = []
        for tp in tps:
            start = starts.get(tp)
            if start is None or start.offset >= ends[tp]:
                continue  # nothing at or after from_ms
            consumer.assign([tp])
            consumer.seek(tp, start.offset)
            while await consumer.position(tp) < ends[tp]:
                fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
                done = False
                for record in fetched.get(tp, []):
                    if record.offset >= ends[tp] or record.timestamp > to_ms:
                        done = True
                        break
                    records.append(
                        StoredRecord(
                            record.topic,
                            record.partition,
                            record.offset,
                            record.timestamp,
                            record.key,
                            record.value,
                        )
                    )
                if done:
                    break
        return records
    finally:
        await consumer.stop()


def merged_batches(records: Iterable[StoredRecord]) -> Iterator[RawBatch]:
    """Batches in the deterministic merge order (see the module docstring)."""
    by_partition: dict[int, list[StoredRecord]] = {}
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
    records: Sequence[StoredRecord], stage: IngestStage, pipeline: PipelineReplay
) -> Iterator[Decision]:
    """The decisions of the worker's path over `records`."""
    for batch in merged_batches(records):
        result = stage.process(batch)
        yield from pipeline.batch(
            batch.topic, batch.partition, [item.event for item in result.accepted]
        )
