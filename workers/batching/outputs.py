"""Sending a batch's outputs in the transaction of the batch's own input partition.

With `processing_guarantee="exactly_once"`, Faust sends each record in the transaction named
after the OUTPUT record's partition number (and only for topics the app subscribes to), so the
outputs of input partition N would commit with the offsets of other partitions, or outside any
transaction: after a crash a batch's outputs can be visible while its input is processed again
(measured: every output doubled for the batches in flight). guardstream sends every output of
a batch here instead, in the transaction that commits that batch's input offsets
(`batching.transactions`: one per agent subscription and partition, the id the commits use
too): the batch's outputs and its offsets become visible together or not at all. In
at-least-once mode this is a plain send.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiokafka.errors import IllegalOperation, KafkaError
from faust.exceptions import ProducerSendError
from faust.types import ProcessingGuarantee

from workers.batching.generation import ensure_current
from workers.batching.migration import TransactionLost
from workers.batching.transactions import transactional_id


def _retrieved(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()


class BatchOutputs:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        guarantee: Any = app.conf.processing_guarantee  # typed loosely by Faust
        self._exactly_once = guarantee == ProcessingGuarantee.EXACTLY_ONCE
        self._started = False

    async def send(
        self,
        source: tuple[str, int],
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
    ) -> None:
        """Send `value` to `topic` as an output of the batch of `source` (input topic,
        partition) being processed (partition None: by the key's hash). Raises
        `TransactionLost` when the batch can no longer be committed, `StaleBatch` when a
        rebalance happened since it was delivered (`batching.runner`)."""
        ensure_current(self._app)
        source_topic, source_partition = source
        producer: Any = self._app.producer
        tid = None
        try:
            if not self._exactly_once:
                if not self._started:  # once, not per output record
                    await producer.maybe_start()
                    self._started = True
                await producer.send(topic, key, value, partition, None, None)
                return
            tid = transactional_id(self._app, source_topic, source_partition)
            delivery = await producer.send(
                topic, key, value, partition, None, None, transactional_id=tid
            )
            # The transaction's commit reports a failed delivery; the record's own future
            # would otherwise log "Future exception was never retrieved" once per record
            # in flight when a producer is fenced (measured: 32 ERROR lines for one fencing).
            if isinstance(delivery, asyncio.Future):
                delivery.add_done_callback(_retrieved)
        except (KafkaError, ProducerSendError, IllegalOperation) as exc:
            # Fenced, out of a transaction (IllegalOperation is not a KafkaError), or its
            # producer dropped after a failure.
            raise TransactionLost(tid, exc) from exc
