"""A Faust app whose Kafka transport delivers :class:`BatchTopic` partitions in batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from workers.batching.consumer import BatchingConsumer
from workers.batching.gate import CommitGate
from workers.batching.migration import PartitionMigration
from workers.batching.timing import BatchTimings
from workers.batching.transactions import BatchingTransactionManager

# aiokafka's default. A transaction open longer than this is aborted by the broker and its
# producer fenced, which costs the worker its partitions (`batching.migration`); guardstream's
# transactions last one commit interval, so only a stall of this length can do that.
DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000


class BatchingProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if self.app.in_transaction:
            extra["transaction_timeout_ms"] = self.app.transaction_timeout_ms  # type: ignore[attr-defined]
        return extra


class BatchingTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type] = BatchingConsumer
    Producer: ClassVar[type] = BatchingProducer
    TransactionManager: ClassVar[type] = BatchingTransactionManager


class BatchingApp(faust.App):
    """``faust.App`` with the batching consumer, a commit gate (`batching.gate`: agents that
    send outputs hold ``commit_gate.batch()`` around each batch) and the reaction to lost
    transactions (`batching.migration`). Everything else is stock Faust."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commit_gate = CommitGate()
        self.migration = PartitionMigration(self)
        self.timings = BatchTimings()
        self.transaction_timeout_ms = DEFAULT_TRANSACTION_TIMEOUT_MS
        self.transaction_groups: dict[str, str] = {}
        """Topic -> its transaction group (`batching.transactions`), set by `BatchTopic`."""

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)
