"""Read a compacted state topic to its end: the latest value of every key (shell: Kafka I/O).

What `guardstream breakers` shows and what the cascade resyncs from: read every partition
from the beginning up to at least the end offsets taken at the start, keeping the last value
per key; a tombstone deletes the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from topics.connect import start_client

_FETCH_TIMEOUT_MS = 500


async def latest_values(
    client_options: Mapping[str, Any], bootstrap: str, topic: str, partitions: int
) -> dict[bytes, bytes]:
    """Key -> latest value of `topic` (`partitions` as in the catalog, verified at start)."""
    consumer = AIOKafkaConsumer(
        **client_options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await start_client(consumer, bootstrap, consumer.stop)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        latest: dict[bytes, bytes] = {}
        async for record in records_to_end(consumer, tps):
            if record.key is None:
                continue
            if record.value is None:
                latest.pop(record.key, None)
            else:
                latest[record.key] = record.value
        return latest
    finally:
        await consumer.stop()


async def records_to_end(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of the assigned `partitions` from their beginning until each has been
    read to the end offset it had when the read began. Records fetched past that end are
    yielded too: the consumer's position is past them, and a caller that goes on following
    the topic from there would otherwise never see them."""
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(list(partitions))
    pending = {tp for tp in partitions if ends[tp] > 0}
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS)
        for records in fetched.values():
            for record in records:
                yield record
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
