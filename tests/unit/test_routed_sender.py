"""The routing half's watermarks (workers.routed.sender): sent when they advance, and again
after the input partition was revoked (its transaction, watermark included, was aborted)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

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


class FailingOnce(RecordingOutputs):
    """Fails the second send (a transaction lost mid-watermark), then works again."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(
        self, source: Any, topic: str, key: bytes, value: bytes, partition: int | None = None
    ) -> None:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("transaction lost")
        await super().send(source, topic, key, value, partition)


async def test_a_watermark_whose_send_failed_is_sent_again() -> None:
    sender = RoutedSender(BatchingApp("guardstream-test"), "p.slo-counts", 2)
    outputs = FailingOnce()
    sender._outputs = outputs  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        await sender.watermark("p.tool-invocations", 1, 5_000)
    # The batch failed; the next one of the source (no later event: a clock tick's partition)
    # reaches the same time, and every counter must still hear of it.
    await sender.watermark("p.tool-invocations", 1, 5_000)
    assert outputs.sent == [(0, 5_000), (0, 5_000), (1, 5_000)]
