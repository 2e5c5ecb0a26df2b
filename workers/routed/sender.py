"""The routing half of a routed topic (`budget-spend`, `slo-counts`; DESIGN §11): records go
out keyed by the state they count for, and after each batch the input partition's watermark
goes to every partition of the routed topic, so the counters can count in event-time order
(`reorder.WatermarkReorder`). In production mode the sends join the input batch's
transaction (`batching.outputs`)."""

from __future__ import annotations

import faust

from schemas.codec import encode
from schemas.watermark import SourceWatermark
from workers.batching.outputs import BatchOutputs

# Watermarks go to every partition; the key only has to be constant.
WATERMARK_KEY = b"watermark"


class RoutedSender:
    def __init__(self, app: faust.App, topic: str, partitions: int) -> None:
        self._outputs = BatchOutputs(app)
        self._topic = topic
        self._partitions = partitions
        self._marks: dict[tuple[str, int], int] = {}

    def forget_source(self, source_topic: str, source_partition: int) -> None:
        """The input partition went away (revoked; its open transaction aborted): whoever
        processes it next sends its watermark again, even one this worker sent before."""
        self._marks.pop((source_topic, source_partition), None)

    async def send(self, source: tuple[str, int], key: bytes, value: bytes) -> None:
        """A routed record, as an output of the batch of `source` (input topic, partition)."""
        await self._outputs.send(source, self._topic, key, value)

    async def watermark(self, source_topic: str, source_partition: int, reached: int) -> None:
        """Tell every partition how far `source_partition`'s event time got (if further)."""
        source = (source_topic, source_partition)
        if reached <= self._marks.get(source, -1):
            return
        mark = encode(
            SourceWatermark(
                source_topic=source_topic, source_partition=source_partition, ts_ms=reached
            )
        )
        for partition in range(self._partitions):
            await self._outputs.send(source, self._topic, WATERMARK_KEY, mark, partition)
        # Only once every partition has it: a send that failed (its transaction lost) must
        # not keep the next batch of the source from sending the watermark again, or the
        # counters wait for it forever (a source with no later event never advances it).
        self._marks[source] = reached
