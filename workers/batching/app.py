"""A Faust app whose Kafka transport delivers :class:`BatchTopic` partitions in batches."""

from __future__ import annotations

from typing import ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from workers.batching.consumer import BatchingConsumer


class BatchingTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type] = BatchingConsumer


class BatchingApp(faust.App):
    """``faust.App`` with the batching consumer; everything else is stock Faust."""

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)
