"""Find the head of an audit chain in the audit topic (shell: Kafka I/O).

A worker that takes over a source partition continues that partition's chain where the last
owner left it, instead of starting a second chain at seq 0 (a fork). The chain's records all
live in one audit partition (the chain id is the key); the newest ones are near its end, so
the search reads backwards in growing steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.audit import AuditRecord
from topics.keys import key_partition
from topics.settled import partition_reader, records_between, scan_backwards, settled_end


async def last_record(
    client_options: Mapping[str, Any], topic: str, partitions: int, chain_id: str
) -> AuditRecord | None:
    """The chain's record with the highest seq, or None for a new chain. `partitions` is the
    audit topic's partition count (the catalog's; the worker verified it at start)."""
    key = chain_id.encode()
    tp = TopicPartition(topic, key_partition(key, partitions))
    async with partition_reader(client_options, tp) as consumer:

        async def highest_between(start: int, stop: int) -> AuditRecord | None:
            last: AuditRecord | None = None
            async for record in records_between(consumer, tp, start, stop):
                if record.key != key or record.value is None:
                    continue
                try:
                    candidate = AuditRecord.model_validate_json(record.value)
                except ValidationError:
                    continue  # not ours to judge here; `audit verify` reports it
                if last is None or candidate.seq > last.seq:
                    last = candidate
            return last

        # Not the stable offset of now: a transaction open before the chain's newest records
        # would hide them, and the chain would fork at a stale head (`topics.settled`).
        end = await settled_end(client_options, consumer, tp, key)
        return await scan_backwards(consumer, tp, highest_between, end=end)
