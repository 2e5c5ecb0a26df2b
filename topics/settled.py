"""Where to stop reading one key's records in a transactional partition (shell: Kafka I/O).

A `read_committed` consumer sees a partition only up to its last stable offset: the first
record of the oldest transaction still open there, whoever's it is. Records committed after
that point stay invisible until it ends. The audit topic holds many chains per partition, each
written by the worker owning one source partition, so a worker taking a partition over and
looking for its chain's head (or the input its trail recorded) can find the chain's newest
committed records hidden behind another worker's open transaction -- measured: a chain
continued at seq 0 beside ten committed records, one input batch processed and recorded twice.

Waiting until the whole partition is stable is not the answer: the asking worker has
transactions of its own open, and they cannot commit while it waits inside a batch. Only the
records up to the key's newest one matter. They were written before the takeover by the
chain's previous owner, whose open transaction the new owner's producer aborted when it took
the transactional id over; a transaction that began before them is another worker's (ended
within its commit interval) or a dead producer's (ended by the broker's transaction timeout).
The asking worker's own transactions began after the takeover, past them.

`settled_end` finds the key's newest offset with `read_uncommitted` (open and aborted records
included), then waits until the stable offset has passed it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from topics.errors import GuardstreamError

log = logging.getLogger(__name__)

T = TypeVar("T")

SETTLE_TIMEOUT_S = 90.0
"""How long to wait at most: a transaction left open by a dead producer ends at the broker's
transaction timeout (`GUARDSTREAM_TRANSACTION_TIMEOUT_S`, 60 s by default) plus its abort."""
_POLL_S = 0.1
_WARN_AFTER_S = 5.0
_FIRST_STEP = 1000
_FETCH_TIMEOUT_MS = 1000
_SCAN_FETCH_WAIT_MS = 20
"""How long the broker may hold a fetch of these readers that finds no new data (aiokafka's
default: 500 ms). They seek back and forth over one partition: a fetch sent from the old
position and held at the partition's end delays every seek (measured: reading one audit
chain's head, the first decision of each partition, took 1-2 s)."""


@asynccontextmanager
async def partition_reader(
    client_options: Mapping[str, Any], tp: TopicPartition, *, committed: bool = True
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of `tp` alone, outside any group: committed records only (`committed`),
    or every record, open and aborted transactions' included."""
    consumer = AIOKafkaConsumer(
        **client_options,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        fetch_max_wait_ms=_SCAN_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        yield consumer
    finally:
        await consumer.stop()


async def high_watermark(client_options: Mapping[str, Any], tp: TopicPartition) -> int:
    """`tp`'s end offset, open transactions included: a record appended later lands there or
    past it."""
    async with partition_reader(client_options, tp, committed=False) as consumer:
        return int((await consumer.end_offsets([tp]))[tp])


class UnsettledPartition(GuardstreamError):
    """A transaction before a key's newest record stayed open past the wait: reading now
    would miss committed records of the key."""


async def settled_end(
    client_options: Mapping[str, Any],
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    key: bytes,
    *,
    timeout_s: float = SETTLE_TIMEOUT_S,
) -> int:
    """The offset up to which `consumer` (a `read_committed` one, assigned `tp`) holds every
    committed record with `key`: its end offset once that is past the key's newest record.
    Raises UnsettledPartition after `timeout_s`."""
    newest = await newest_offset(client_options, tp, key)
    started = time.monotonic()
    deadline = started + timeout_s
    warned = False
    while True:
        end = int((await consumer.end_offsets([tp]))[tp])
        if newest is None or end > newest:
            if warned:
                log.warning("%s[%d] settled after %.1f s", tp.topic, tp.partition, _since(started))
            return end
        if not warned and time.monotonic() - started >= _WARN_AFTER_S:
            # Worth a line in the log: a crash test once stalled here without a trace.
            warned = True
            log.warning(
                "%s[%d]: waiting for a transaction open before offset %d (the newest record "
                "keyed %r) to end; the stable end is %d",
                tp.topic,
                tp.partition,
                newest,
                key.decode(errors="replace"),
                end,
            )
        if time.monotonic() >= deadline:
            raise UnsettledPartition(
                f"{tp.topic}[{tp.partition}]: a transaction before offset {newest} (the newest "
                f"record keyed {key.decode(errors='replace')!r}) is still open after "
                f"{timeout_s:.0f} s"
            )
        await asyncio.sleep(_POLL_S)


def _since(started: float) -> float:
    return time.monotonic() - started


async def newest_offset(
    client_options: Mapping[str, Any], tp: TopicPartition, key: bytes
) -> int | None:
    """The offset of `tp`'s newest record with `key`, committed, aborted or still open
    (None: there is none)."""
    async with partition_reader(client_options, tp, committed=False) as consumer:

        async def newest_between(start: int, stop: int) -> int | None:
            newest = None
            async for record in records_between(consumer, tp, start, stop):
                if record.key == key:
                    newest = record.offset
            return newest

        return await scan_backwards(consumer, tp, newest_between)


async def scan_backwards(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    search: Callable[[int, int], Awaitable[T | None]],
    *,
    end: int | None = None,
) -> T | None:
    """The first result of `search(start, stop)` that is not None, over ranges of `tp` from
    `end` (default: its end offset for `consumer`) back to its beginning in growing steps: a
    key's newest records are near the end of its partition."""
    beginning = (await consumer.beginning_offsets([tp]))[tp]
    stop = end if end is not None else (await consumer.end_offsets([tp]))[tp]
    step = _FIRST_STEP
    while stop > beginning:
        start = max(stop - step, beginning)
        found = await search(start, stop)
        if found is not None:
            return found
        stop, step = start, step * 4
    return None


async def records_between(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """`tp`'s records from offset `start` up to `stop` (exclusive) as `consumer` reads them."""
    consumer.seek(tp, start)
    while await consumer.position(tp) < stop:
        fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        for record in fetched.get(tp, []):
            if record.offset >= stop:
                return
            yield record
