"""SLO measurements on the wire: routed counts in and out of `slo-counts`.

An input partition sums a batch's measurements per tracker key and second (the trackers
count at 1-second resolution, so nothing is lost) and sends one `SloCounts` per key; the
counter turns the rows back into `SloItem`s for its reorder buffer and engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from schemas.events import LatencyEvent, ToolInvocation
from schemas.slo_counts import MAX_ROWS, SketchBins, SloCounts, SloRow
from schemas.stream import StreamEvent
from schemas.types import epoch_ms
from workers.kernels.sketch import QuantileSketch
from workers.routed.counting import RoutedBatch, in_slices
from workers.slos.routing import RESOLUTION_MS, Measure, SloRouter, Target, TargetKind


class SloItem(NamedTuple):
    """One second of one tracker key's measurements from one source."""

    ts_ms: int
    key: str
    target: Target
    labels: Mapping[str, str]
    valid: int
    good: int
    value_sum: float
    value_count: int
    sketch: QuantileSketch | None
    event_id: str


class SecondTotals:
    """One tracker key's measurements in one second, summed."""

    __slots__ = ("event_id", "good", "sketch", "valid", "value_count", "value_sum")

    def __init__(self) -> None:
        self.valid = self.good = self.value_count = 0
        self.value_sum = 0.0
        self.sketch: QuantileSketch | None = None
        self.event_id = ""
        """The last event's id (evidence)."""

    def add(
        self, target: Target, valid: int, good: int, value: float | None, event_id: str
    ) -> None:
        """One event's measure."""
        self.valid += valid
        self.good += good
        self.event_id = event_id
        if value is not None:
            self.value_sum += value
            self.value_count += 1
            if target.sketched:
                if self.sketch is None:
                    self.sketch = QuantileSketch()
                self.sketch.add(value)

    def merge(self, item: SloItem) -> None:
        """A routed second of one source."""
        self.valid += item.valid
        self.good += item.good
        self.value_sum += item.value_sum
        self.value_count += item.value_count
        self.event_id = item.event_id
        if item.sketch is not None:
            if self.sketch is None:
                self.sketch = QuantileSketch()
            self.sketch.merge(item.sketch)


class BatchCounts:
    """A batch's measurements summed per tracker key and second (`add` in the batch's order),
    then one `SloCounts` per key (more past MAX_ROWS rows), keys in the order they first came
    and rows in the order their seconds first came."""

    __slots__ = ("_keys", "measures")

    def __init__(self) -> None:
        self._keys: dict[str, tuple[Target, tuple[str, ...], dict[int, SecondTotals]]] = {}
        self.measures = 0
        """How many measurements were added."""

    def add(
        self,
        routes: Sequence[tuple[str, Target, tuple[str, ...]]],
        second_ms: int,
        valid: int,
        good: int,
        value: float | None,
        event_id: str,
    ) -> None:
        """One event's measure for each (key, target, labels) of `routes` (labels: its values
        of `target.group_by`), in the second starting at `second_ms`."""
        self.measures += len(routes)
        keys = self._keys
        for key, target, labels in routes:
            entry = keys.get(key)
            if entry is None:
                entry = keys[key] = (target, labels, {})
            seconds = entry[2]
            totals = seconds.get(second_ms)
            if totals is None:
                totals = seconds[second_ms] = SecondTotals()
            totals.add(target, valid, good, value, event_id)

    def records(self, *, source_topic: str, source_partition: int) -> list[SloCounts]:
        records: list[SloCounts] = []
        for key, (target, labels, seconds) in self._keys.items():
            rows: list[SloRow] = [
                (ts, s.valid, s.good, s.value_sum, s.value_count, bins_of(s.sketch), s.event_id)
                for ts, s in seconds.items()
            ]
            named = dict(zip(target.group_by, labels, strict=True))
            records.extend(
                SloCounts(
                    key=key,
                    target_kind=target.kind.value,
                    target_id=target.target_id,
                    labels=named,
                    rows=part,
                    source_topic=source_topic,
                    source_partition=source_partition,
                )
                for part in in_slices(rows, MAX_ROWS)
            )
        return records


def count_records(
    measured: Iterable[tuple[int, str, Measure]],
    *,
    source_topic: str,
    source_partition: int,
) -> list[SloCounts]:
    """`measured`: (event ms, event id, measure) in the batch's order; see `BatchCounts`."""
    counts = BatchCounts()
    for event_ms, event_id, m in measured:
        second_ms = event_ms - event_ms % RESOLUTION_MS
        counts.add(((m.key, m.target, m.labels),), second_ms, m.valid, m.good, m.value, event_id)
    return counts.records(source_topic=source_topic, source_partition=source_partition)


def items_of(record: SloCounts, targets: Mapping[tuple[TargetKind, str], Target]) -> list[SloItem]:
    """The record's items under the current policy; none when its target no longer exists."""
    target = targets.get((TargetKind(record.target_kind), record.target_id))
    if target is None:
        return []
    return [
        SloItem(
            ts_ms,
            record.key,
            target,
            record.labels,
            valid,
            good,
            value_sum,
            value_count,
            sketch_of(bins),
            event_id,
        )
        for ts_ms, valid, good, value_sum, value_count, bins, event_id in record.rows
    ]


def bins_of(sketch: QuantileSketch | None) -> SketchBins | None:
    if sketch is None or not sketch.count:
        return None
    return SketchBins(
        bins=sorted(sketch.bins.items()),
        zero_count=sketch.zero_count,
        min=sketch.min,
        max=sketch.max,
    )


def sketch_of(bins: SketchBins | None) -> QuantileSketch | None:
    """The sketch `bins_of` described (same relative accuracy: the default)."""
    if bins is None:
        return None
    sketch = QuantileSketch()
    sketch.bins = dict(bins.bins)
    sketch.zero_count = bins.zero_count
    sketch.count = bins.zero_count + sum(count for _, count in bins.bins)
    sketch.min = bins.min if math.isfinite(bins.min) else math.inf
    sketch.max = bins.max if math.isfinite(bins.max) else -math.inf
    return sketch


def count_batch(
    router: SloRouter, events: Iterable[StreamEvent], *, source_topic: str, source_partition: int
) -> RoutedBatch:
    """Route one input batch's tool invocations and latency events to their SLO trackers and
    sum them per key and second (the router sink and replay share this)."""
    routes = router.routes
    counts = BatchCounts()
    add = counts.add
    reached = -1
    for event in events:
        event_ms = epoch_ms(event.ts)
        if event_ms > reached:
            reached = event_ms
        if type(event) is ToolInvocation or type(event) is LatencyEvent:
            second_ms = event_ms - event_ms % RESOLUTION_MS
            event_id = event.event_id
            for measurement, keys in routes(event).grouped:
                contribution = measurement.measure(event)
                if contribution is not None:
                    add(keys, second_ms, *contribution, event_id)
    records = counts.records(source_topic=source_topic, source_partition=source_partition)
    return RoutedBatch(records, reached, counts.measures)
