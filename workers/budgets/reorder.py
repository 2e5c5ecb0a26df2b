"""Routed spend back in event-time order before it is counted (pure).

Spend for one budget arrives from every input partition, each in its own order and at its own
pace; counted in arrival order, a fast partition would push event time ahead and make a slow
one's spend look late (a tripwire interval checked too early, a rate window slid too far).
So the counter holds spend here and releases it in event-time order once every input
partition's watermark (the highest event time it has reported, clock ticks included) is past
it: the classic low watermark, strictly (more spend may still come at exactly a watermark).
Ties are ordered by source and arrival, so the order, and with it every decision, does not
depend on how the partitions interleaved.

A partition that never reports holds everything back; the worker's clock ticks report every
owned input partition each `GUARDSTREAM_CLOCK_INTERVAL_S`, so an idle partition delays
budgets by about that much.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from workers.budgets.routing import Spend

Source = tuple[str, int]  # (input topic, partition)


class SpendReorder:
    def __init__(self, sources: Iterable[Source]) -> None:
        self._watermarks: dict[Source, int | None] = dict.fromkeys(sources)
        if not self._watermarks:
            raise ValueError("a reorder buffer needs at least one source")
        self._heap: list[tuple[int, Source, int, Spend]] = []
        self._arrivals = 0
        self.low_watermark_ms: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, source: Source, spends: Iterable[Spend]) -> None:
        """Hold `source`'s spends (in its order) until the low watermark passes them."""
        for spend in spends:
            self._arrivals += 1
            heapq.heappush(self._heap, (spend.ts_ms, source, self._arrivals, spend))

    def watermark(self, source: Source, ts_ms: int) -> list[Spend]:
        """`source` reached `ts_ms`: the spends now safe to count, in event-time order."""
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
        released: list[Spend] = []
        heap = self._heap
        # Strictly below: a source may still send more spend at exactly its watermark.
        while heap and heap[0][0] < low:
            released.append(heapq.heappop(heap)[3])
        return released
