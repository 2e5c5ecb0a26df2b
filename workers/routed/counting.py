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
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, NamedTuple, TypeVar

from pydantic import ValidationError

from schemas.base import KeyedRecord
from schemas.watermark import SourceWatermark
from workers.decisions import Decision
from workers.routed.reorder import Source, Timed, WatermarkReorder

log = logging.getLogger(__name__)

RESOLUTION_MS = 1000
"""Routed items are per second (budgets and SLOs count at 1-second event-time resolution)."""

T = TypeVar("T", bound=Timed)
K = TypeVar("K", bound=KeyedRecord)
R = TypeVar("R")


def in_slices(rows: list[R], size: int) -> Iterator[list[R]]:
    """`rows` in consecutive slices of at most `size` (a routed record's cap on rows), none
    when there are no rows."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class RoutedBatch(NamedTuple):
    """What one input batch sends to a routed topic."""

    records: Sequence[KeyedRecord]
    """One record per routed key (and slice), sent keyed by it."""
    reached_ms: int
    """The batch's highest event time (its watermark), -1 for an empty batch."""
    measures: int
    """Event x state measures routed (metrics)."""


class RoutedCounting(Generic[T, K]):
    """The budget and SLO counters are this with their own `_unpack`, `_count` and
    `_advance`: methods, not callbacks, so that a core holds state and no functions (its
    snapshot is its state, `shell.snapshot`)."""

    model: type[K]
    """The routed records' wire model."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self._buffer: WatermarkReorder[T] = WatermarkReorder(sources)
        self.unreadable = 0

    def _unpack(self, record: K) -> tuple[Source, list[T]]:
        """A routed record's source and items."""
        raise NotImplementedError

    def _count(self, items: list[T]) -> list[Decision]:
        """The decisions of the items a watermark released (in event-time order)."""
        raise NotImplementedError

    def _advance(self, low: int) -> list[Decision]:
        """Time reached `low`: every item below it is counted."""
        raise NotImplementedError

    def apply(self, raw: bytes) -> list[Decision]:
        """One record of the routed partition, as it is on the topic."""
        try:
            if b'"watermark"' in raw:
                return self.watermark(SourceWatermark.model_validate_json(raw))
            record = self.model.model_validate_json(raw)
        except ValidationError as exc:
            # Only guardstream writes these topics: a bad record is a bug, not user input.
            self.unreadable += 1
            log.error("unreadable routed record skipped: %s", exc)
            return []
        self.add(record)
        return []

    def add(self, record: K) -> None:
        """A routed record (decoded): its items wait for the watermarks."""
        source, items = self._unpack(record)
        self._buffer.add(source, items)

    def watermark(self, mark: SourceWatermark) -> list[Decision]:
        """A source's watermark (decoded): what every source has passed is counted."""
        buffer = self._buffer
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

    @property
    def extra_held(self) -> int:
        """States held beside the engine's keys (`shell.spec.Core`): none, the budget and SLO
        engines pin their overflow states in their key map (`kernels.key_cap`)."""
        return 0
