"""Where a transactional partition's committed records end, once nothing before it is open.

A `read_committed` consumer sees a partition only up to its last stable offset: the first
record of the oldest transaction still open. Records committed *after* that point stay
invisible until the open transaction ends, and a worker that looks then (for an audit chain's
head, the input its trail recorded, a routed partition's history) reads an incomplete log and
acts on it -- measured: a chain continued at seq 0 beside ten committed records, one input batch
processed and recorded twice. A worker SIGKILLed mid-transaction leaves its transactions open
until the broker times them out (`GUARDSTREAM_TRANSACTION_TIMEOUT_S`) or a new producer with
the same transactional id fences it; live workers' transactions end within a commit interval.

`settled_end` waits until the stable offset has reached the high watermark the partition had
when it was asked: every transaction open then has ended, so everything written before the
question is either visible or aborted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 75.0
"""How long to wait at most: a transaction left open by a dead producer ends at the broker's
transaction timeout (60 s by default) plus its abort."""
_POLL_S = 0.25


async def high_watermark(client_options: Mapping[str, Any], tp: TopicPartition) -> int:
    """The partition's end offset, open transactions included."""
    consumer = AIOKafkaConsumer(
        **client_options,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
    )
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def settled_end(
    client_options: Mapping[str, Any],
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    *,
    timeout_s: float = SETTLE_TIMEOUT_S,
) -> int:
    """`tp`'s end offset for `consumer` (a `read_committed` one) once every transaction open
    now has ended; after `timeout_s`, what it is then (logged: the read may be incomplete)."""
    target = await high_watermark(client_options, tp)
    deadline = time.monotonic() + timeout_s
    while True:
        end = int((await consumer.end_offsets([tp]))[tp])
        if end >= target:
            return end
        if time.monotonic() >= deadline:
            log.warning(
                "%s[%d]: a transaction is still open after %.0f s; reading up to offset %d of %d",
                tp.topic,
                tp.partition,
                timeout_s,
                end,
                target,
            )
            return end
        await asyncio.sleep(_POLL_S)
