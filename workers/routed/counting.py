"""The counting half of a routed topic (pure): one partition's records -- routed items from
every input partition, and their watermarks -- back in event-time order, into an engine.

`RoutedCounting.apply(raw)` takes one record of the partition: routed items are held (by
source) in a `WatermarkReorder`; a watermark releases what every source has passed, which is
counted in event-time order, and then time moves to the new low watermark. The budget and SLO
counters are this with their own parsing, counting and advancing; the agents publish what
`apply` returns, and replay feeds it the same bytes without Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from pydantic import ValidationError

from schemas.watermark import SourceWatermark
from workers.decisions import Decision
from workers.routed.reorder import Source, Timed, WatermarkReorder

log = logging.getLogger(__name__)

RESOLUTION_MS = 1000
"""Routed items are per second (budgets and SLOs count at 1-second event-time resolution)."""

T = TypeVar("T", bound=Timed)


class RoutedCounting(Generic[T]):
    def __init__(
        self,
        sources: Iterable[Source],
        *,
        parse: Callable[[bytes], tuple[Source, list[T]]],
        count: Callable[[list[T]], list[Decision]],
        advance: Callable[[int], list[Decision]],
    ) -> None:
        """`parse`: a routed record's source and items (ValidationError when unreadable);
        `count`: the decisions of the items a watermark released (in event-time order);
        `advance(low)`: time reached `low`, every item below it counted."""
        self._buffer: WatermarkReorder[T] = WatermarkReorder(sources)
        self._parse = parse
        self._count = count
        self._advance = advance
        self.unreadable = 0

    def apply(self, raw: bytes) -> list[Decision]:
        buffer = self._buffer
        try:
            if b'"watermark"' in raw:
                mark = SourceWatermark.model_validate_json(raw)
            else:
                source, items = self._parse(raw)
                buffer.add(source, items)
                return []
        except ValidationError as exc:
            # Only guardstream writes these topics: a bad record is a bug, not user input.
            self.unreadable += 1
            log.error("unreadable routed record skipped: %s", exc)
            return []
        before = buffer.low_watermark_ms
        # Routed items are stamped with their second; a source at 5.5 s may still send more
        # for the second at 5 s, so only the seconds before its current one are complete:
        # every item of a second is released at once, whatever the batching.
        second = mark.ts_ms - mark.ts_ms % RESOLUTION_MS
        released = buffer.watermark((mark.source_topic, mark.source_partition), second)
        decisions = self._count(released) if released else []
        low = buffer.low_watermark_ms
        if low is not None and low != before:
            decisions += self._advance(low)
        return decisions
