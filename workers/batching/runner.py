"""The loop every batch agent runs: one batch at a time, under the commit gate, and a batch
that cannot finish gives its partitions up instead of crashing the worker.

A batch fails as a whole when an output cannot be sent (a fenced or aborted transaction, a
broker that stays unreachable) or when what it reads first (a chain head, the trail's
recorded offsets) cannot be read. Its acked offset must then never be committed: with
exactly-once its outputs are gone with the transaction, with at-least-once some were never
sent. `PartitionMigration.lost` blocks commits and rejoins the group; every partition is read
again from its committed offset by whoever is assigned it. Batches that arrive in between are
skipped for the same reason (their partitions are about to be revoked and re-read).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import IllegalOperation, KafkaError

from workers.batching.app import BatchingApp
from workers.batching.generation import StaleBatch, is_stale, processing
from workers.batching.migration import TransactionLost
from workers.batching.records import RawBatch

log = logging.getLogger(__name__)


async def run_batches(
    app: BatchingApp,
    batches: faust.StreamT[RawBatch],
    handle: Callable[[RawBatch], Awaitable[None]],
) -> None:
    gate, migration, timed = app.commit_gate, app.migration, app.timings.batch.timing
    async for batch in batches:
        if migration.commits_blocked or is_stale(app, batch.generation):
            # Its partition is being given up, or was since it was delivered: it is read
            # again (by whoever owns it now) from the committed offset.
            _leave_unacked(app, batches)
            continue
        try:
            with processing(batch.generation):
                async with gate.batch():
                    with timed():
                        await handle(batch)
        except Exception as exc:
            _leave_unacked(app, batches)
            if isinstance(exc, StaleBatch) or is_stale(app, batch.generation):
                # The rebalance that made it stale already gave every partition up and
                # read them again: a failure of its old producers (fenced by the new
                # ones) is no reason to rejoin once more.
                log.info(
                    "a batch of %s[%d] from before a rebalance stopped: %r",
                    batch.topic,
                    batch.partition,
                    exc,
                )
                continue
            if isinstance(exc, TransactionLost):
                await migration.lost(exc.cause, exc.transactional_id)
                continue
            if not isinstance(exc, KafkaError | IllegalOperation):
                # Not a Kafka failure: a bug. Giving the partitions up keeps the batch from
                # being committed unprocessed (Faust would restart the agent past it).
                log.exception("processing a batch of %s[%d] failed", batch.topic, batch.partition)
            await migration.lost(exc)


def _leave_unacked(app: BatchingApp, batches: faust.StreamT[RawBatch]) -> None:
    """Make the stream's ack of the current batch a no-op: its offsets must never count as
    processed. Dropping the block at the next assignment is not enough on its own: a lone
    member's rejoin keeps its generation, so Faust does not see a batch delivered before the
    rejoin as stale, and its ack would be committed with the new assignment (measured: whole
    partitions skipped). Faust no longer waits for the message either (revocations wait for
    every unacked message)."""
    event = batches.current_event
    if event is None:
        return
    message = event.message
    message.acked = True  # Message.ack checks this first
    # The consumer the app already has (the `consumer` property would build one).
    consumer = getattr(app, "_consumer", None)
    unacked: set[Any] = getattr(consumer, "_unacked_messages", set())
    unacked.discard(message)
