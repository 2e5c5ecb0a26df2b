"""Routed measurements back in event-time order before they are counted (pure).

Spend for one budget (counts for one SLO) arrive from every input partition, each in its own
order and at its own pace; counted in arrival order, a fast partition would push event time
ahead and make a slow one's spend look late (a tripwire interval checked too early, a rate or
burn-rate window slid too far). So the counter holds items here and releases them in
event-time order once every input
partition's watermark (the highest event time it has reported, clock ticks included) is past
it: the classic low watermark, strictly (more spend may still come at exactly a watermark).
Ties are ordered by source and arrival, so the order, and with it every decision, does not
depend on how the partitions interleaved.

A partition that never reports holds everything back; the worker's clock ticks report every
owned input partition each `GUARDSTREAM_CLOCK_INTERVAL_S`, so an idle partition delays
budgets and SLOs by about that much.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

Source = tuple[str, int]  # (input topic, partition)


class Timed(Protocol):
    @property
    def ts_ms(self) -> int: ...


T = TypeVar("T", bound=Timed)


class WatermarkReorder(Generic[T]):
    def __init__(self, sources: Iterable[Source]) -> None:
        self._watermarks: dict[Source, int | None] = dict.fromkeys(sources)
        if not self._watermarks:
            raise ValueError("a reorder buffer needs at least one source")
        self._heap: list[tuple[int, Source, int, T]] = []
        self._arrivals = 0
        self.low_watermark_ms: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, source: Source, items: Iterable[T]) -> None:
        """Hold `source`'s items (in its order) until the low watermark passes them."""
        for item in items:
            self._arrivals += 1
            heapq.heappush(self._heap, (item.ts_ms, source, self._arrivals, item))

    def watermark(self, source: Source, ts_ms: int) -> list[T]:
        """`source` reached `ts_ms`: the items now safe to count, in event-time order."""
        if source not in self._watermarks:
            return []  # not an input partition this buffer waits for (e.g. latency-events)
        previous = self._watermarks[source]
        if previous is not None and ts_ms <= previous:
            return []
        self._watermarks[source] = ts_ms
        marks = self._watermarks.values()
        if any(mark is None for mark in marks):
            return []
        low = min(mark for mark in marks if mark is not None)
        if self.low_watermark_ms is not None and low <= self.low_watermark_ms:
            return []
        self.low_watermark_ms = low
        released: list[T] = []
        heap = self._heap
        # Strictly below: a source may still send more at exactly its watermark.
        while heap and heap[0][0] < low:
            released.append(heapq.heappop(heap)[3])
        return released
