"""Find the head of an audit chain in the audit topic (shell: Kafka I/O).

A worker that takes over a source partition continues that partition's chain where the last
owner left it, instead of starting a second chain at seq 0 (a fork). The chain's records all
live in one audit partition (the chain id is the key); the newest ones are near its end, so
the search reads backwards in growing steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from schemas.audit import AuditRecord

_FIRST_STEP = 1000
_FETCH_TIMEOUT_MS = 1000


async def last_record(
    client_options: Mapping[str, Any], topic: str, partitions: int, chain_id: str
) -> AuditRecord | None:
    """The chain's record with the highest seq, or None for a new chain. `partitions` is the
    audit topic's partition count (the catalog's; the worker verified it at start)."""
    consumer = AIOKafkaConsumer(
        **client_options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        key = chain_id.encode()
        every = list(range(partitions))
        tp = TopicPartition(topic, DefaultPartitioner()(key, every, every))
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        step, stop = _FIRST_STEP, end
        while stop > beginning:
            start = max(stop - step, beginning)
            found = await _last_in_range(consumer, tp, start, stop, key)
            if found is not None:
                return found
            stop, step = start, step * 4
        return None
    finally:
        await consumer.stop()


async def _last_in_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int, key: bytes
) -> AuditRecord | None:
    consumer.seek(tp, start)
    last: AuditRecord | None = None
    while await consumer.position(tp) < stop:
        fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        for record in fetched.get(tp, []):
            if record.offset >= stop:
                return last
            if record.key != key or record.value is None:
                continue
            try:
                candidate = AuditRecord.model_validate_json(record.value)
            except ValidationError:
                continue  # not ours to judge here; `audit verify` reports it
            if last is None or candidate.seq > last.seq:
                last = candidate
    return last
