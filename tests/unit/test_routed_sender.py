"""The routing half's watermarks (workers.routed.sender): sent when they advance, and again
after the input partition was revoked (its transaction, watermark included, was aborted)."""

from __future__ import annotations

from typing import Any

import orjson

from workers.batching import BatchingApp
from workers.routed.sender import WATERMARK_KEY, RoutedSender


class RecordingOutputs:
    def __init__(self) -> None:
        self.sent: list[tuple[int | None, int]] = []

    async def send(
        self, source: Any, topic: str, key: bytes, value: bytes, partition: int | None = None
    ) -> None:
        assert key == WATERMARK_KEY
        self.sent.append((partition, orjson.loads(value)["ts_ms"]))


async def test_a_watermark_goes_to_every_partition_once_and_again_after_a_revocation() -> None:
    sender = RoutedSender(BatchingApp("guardstream-test"), "p.slo-counts", 2)
    outputs = RecordingOutputs()
    sender._outputs = outputs  # type: ignore[assignment]
    await sender.watermark("p.tool-invocations", 1, 5_000)
    await sender.watermark("p.tool-invocations", 1, 5_000)  # not further: nothing new
    await sender.watermark("p.tool-invocations", 1, 4_000)
    assert outputs.sent == [(0, 5_000), (1, 5_000)]
    sender.forget_source("p.tool-invocations", 1)
    await sender.watermark("p.tool-invocations", 1, 5_000)  # processed again after an abort
    assert outputs.sent == [(0, 5_000), (1, 5_000)] * 2
