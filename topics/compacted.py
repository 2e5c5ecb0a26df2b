"""Read a compacted state topic to its end: the latest value of every key (shell: Kafka I/O).

What `guardstream breakers` shows and what a projection rebuild starts from: read every
partition from the beginning up to the end offsets taken at the start (later writes are the
next read's business), keeping the last value per key; a tombstone deletes the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

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
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[bytes, bytes] = {}
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS)
            for tp, records in fetched.items():
                for record in records:
                    if record.offset >= ends[tp] or record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = record.value
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return latest
    finally:
        await consumer.stop()
