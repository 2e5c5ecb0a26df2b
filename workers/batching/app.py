"""A Faust app whose Kafka transport delivers :class:`BatchTopic` partitions in batches."""

from __future__ import annotations

from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from workers.batching.consumer import BatchingConsumer
from workers.batching.gate import CommitGate
from workers.batching.transactions import BatchingTransactionManager


class BatchingTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type] = BatchingConsumer
    TransactionManager: ClassVar[type] = BatchingTransactionManager


class BatchingApp(faust.App):
    """``faust.App`` with the batching consumer and a commit gate (`batching.gate`): agents
    that send outputs hold ``commit_gate.batch()`` around each batch. Everything else is
    stock Faust."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commit_gate = CommitGate()
        self.transaction_groups: dict[str, str] = {}
        """Topic -> its transaction group (`batching.transactions`), set by `BatchTopic`."""

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)
