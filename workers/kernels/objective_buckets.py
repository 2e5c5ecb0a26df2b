"""A window objective's buckets: one `BucketRing` fold per kind of metric (issue 12).

`objective.ObjectiveTracker` keeps its window in one of these rings (Resilience4j's edge: the
`buckets` buckets ending with the one holding now); each adds a record to its bucket and the
running totals, subtracts a bucket that leaves, and turns the window into the metric's value:

- `CountBuckets` (availability, error rate, throughput): valid and good calls per bucket;
- `MeanBuckets` (attribute mean): the attribute's sum and count per bucket, and the exact
  (`math.fsum`) sum of the closed buckets, kept so that a mean after each record costs an
  addition, not a sum over the ring;
- `SketchBuckets` (latency or attribute quantiles): a sketch per bucket and their merge, rebuilt
  when a non-empty bucket leaves, with its bucket indexes sorted once for the top quantiles.

`bucket_ms = ceil(window_ms / buckets)` with 12 buckets for the quantile metrics (merging
sketches is the costly part) and 60 for the others; the ring's window is `buckets * bucket_ms`.
"""

from __future__ import annotations

import math
from typing import ClassVar

from workers.kernels.bucket_ring import BucketRing
from workers.kernels.sketch import QuantileSketch
from workers.kernels.slo_targets_config import ObjectiveMetric, WindowObjective

SKETCH_BUCKETS = 12
COUNTER_BUCKETS = 60
_MINUTE_MS = 60_000
_QUANTILES = (ObjectiveMetric.LATENCY_QUANTILE, ObjectiveMetric.ATTRIBUTE_QUANTILE)

Values = tuple[int, int, QuantileSketch | None, float, int]
"""One record's (pre-aggregated) values, `ObjectiveTracker.record`'s arguments: (valid calls,
good calls, a sketch of values, a sum of attribute values, their count). Each metric reads
its own and ignores the rest. (A plain tuple: a NamedTuple costs ten times as much to build,
once per record.)"""


def window_quantile(
    sketch: QuantileSketch, q: float, keys_desc: list[int] | None = None
) -> float | None:
    """`sketch.quantile(q)`, exactly, found from the top for q >= 0.5: a p95 or p99 visits
    the few highest buckets instead of all of them. `keys_desc`: the sketch's bucket indexes
    in descending order, if the caller keeps them (else they are sorted here)."""
    count = sketch.count
    if q < 0.5 or count == 0:
        return sketch.quantile(q)
    rank = q * (count - 1)
    if sketch.zero_count > rank:
        return max(0.0, sketch.min)
    # The answer is the lowest bucket whose cumulative count (count minus everything above
    # it) exceeds the rank; the highest bucket always does.
    bins = sketch.bins
    above = 0
    answer = 0
    for index in sorted(bins, reverse=True) if keys_desc is None else keys_desc:
        if count - above <= rank:
            break
        answer = index
        above += bins[index]
    return min(max(sketch.value(answer), sketch.min), sketch.max)


class ObjectiveBuckets(BucketRing):
    """The fold of one metric kind over the objective's buckets (module docstring)."""

    __slots__ = ("events",)
    BUCKETS: ClassVar[int] = COUNTER_BUCKETS
    COUNTED: ClassVar[int] = 0
    """Which of a record's `Values` the metric counts (what a late record loses)."""

    def __init__(self, objective: WindowObjective) -> None:
        bucket_ms = -(-objective.window_ms // self.BUCKETS)
        super().__init__(self.BUCKETS * bucket_ms, bucket_ms)
        self.events = 0
        """Values in the window: calls, attribute values or sketch values."""
        self._evict_all()  # empty buckets: the initial state

    def count(self, values: Values) -> int:
        """How many of this metric's values a record holds."""
        counted = values[self.COUNTED]
        assert isinstance(counted, int)
        return counted

    def add(self, slot: int, values: Values) -> None:
        """Count a record's values into `slot` (from `place`) and the totals."""
        raise NotImplementedError

    def value(self, objective: WindowObjective, end_ms: int) -> float | None:
        """The metric over the window up to `end_ms` (exclusive); None without values."""
        raise NotImplementedError


class CountBuckets(ObjectiveBuckets):
    __slots__ = ("_good", "_valid", "good_total")
    COPIED = frozenset({"_good", "_valid"})

    def add(self, slot: int, values: Values) -> None:
        valid, good, _, _, _ = values
        self._valid[slot] += valid
        self._good[slot] += good
        self.events += valid
        self.good_total += good

    def value(self, objective: WindowObjective, end_ms: int) -> float | None:
        valid = self.events
        metric = objective.metric
        if metric is ObjectiveMetric.THROUGHPUT:  # per minute of the window's elapsed part
            return valid * _MINUTE_MS / (end_ms - self.oldest * self.bucket_ms)
        if valid == 0:
            return None
        if metric is ObjectiveMetric.AVAILABILITY:
            return self.good_total / valid
        # (valid - good) / valid, not 1 - good / valid: 2 % must not read 2.0000001 %
        return (valid - self.good_total) / valid

    def _evict(self, slot: int) -> None:
        self.events -= self._valid[slot]
        self.good_total -= self._good[slot]
        self._valid[slot] = self._good[slot] = 0

    def _evict_all(self) -> None:
        self._valid = [0] * self.slots
        self._good = [0] * self.slots
        self.events = self.good_total = 0


class MeanBuckets(ObjectiveBuckets):
    __slots__ = ("_counts", "_sums", "closed_sum")
    COPIED = frozenset({"_counts", "_sums"})
    COUNTED = 4  # value_count

    def add(self, slot: int, values: Values) -> None:
        _, _, _, value_sum, value_count = values
        self._sums[slot] += value_sum
        self._counts[slot] += value_count
        self.events += value_count
        if slot != self._head_slot:  # a late record into a closed bucket
            head = self._head_slot
            self.closed_sum = math.fsum(s for j, s in enumerate(self._sums) if j != head)

    def value(self, objective: WindowObjective, end_ms: int) -> float | None:
        events = self.events
        if not events:
            return None
        return (self.closed_sum + self._sums[self._head_slot]) / events

    def _evict(self, slot: int) -> None:
        self.events -= self._counts[slot]
        self._sums[slot] = 0.0
        self._counts[slot] = 0
        # The emptied slots are those of the buckets time moves into, the new head's among
        # them: every other bucket, the old head included, is closed now.
        self.closed_sum = math.fsum(self._sums)

    def _evict_all(self) -> None:
        self._sums = [0.0] * self.slots
        self._counts = [0] * self.slots
        self.events = 0
        self.closed_sum = 0.0
        """fsum of the attribute sums of the window's buckets before the head."""


class SketchBuckets(ObjectiveBuckets):
    __slots__ = ("_sketches", "_window", "_window_keys")
    COPIED = frozenset({"_window"})
    BUCKETS = SKETCH_BUCKETS
    _window_keys: list[int] | None

    def count(self, values: Values) -> int:
        sketch = values[2]
        return 0 if sketch is None else sketch.count

    def add(self, slot: int, values: Values) -> None:
        sketch = values[2]
        if sketch is None or not sketch.count:
            return
        self._sketches[slot].merge(sketch)
        self.events += sketch.count
        window = self._window
        known = len(window.bins)
        window.merge(sketch)
        if len(window.bins) != known or window.collapsed_below is not None:
            self._window_keys = None  # merging only adds buckets: new ones, or a collapse

    def value(self, objective: WindowObjective, end_ms: int) -> float | None:
        q = objective.quantile
        assert q is not None
        keys = self._window_keys
        if keys is None and q >= 0.5:
            keys = self._window_keys = sorted(self._window.bins, reverse=True)
        return window_quantile(self._window, q, keys)

    def copy(self) -> SketchBuckets:
        clone = super().copy()
        clone._sketches = [sketch.copy() for sketch in self._sketches]
        clone._window_keys = None if self._window_keys is None else self._window_keys[:]
        return clone

    def _evict(self, slot: int) -> None:
        sketches = self._sketches
        if sketches[slot].count:
            self.events -= sketches[slot].count
            sketches[slot].clear()
            window = self._window
            window.clear()
            self._window_keys = None
            for other in sketches:
                if other.count:
                    window.merge(other)

    def _evict_all(self) -> None:
        self._sketches = [QuantileSketch() for _ in range(self.slots)]
        self._window = QuantileSketch()
        """The bucket sketches of the window merged (rebuilt when a non-empty one leaves)."""
        self._window_keys = None
        """Its bucket indexes, descending; None when they must be sorted again."""
        self.events = 0


def buckets_for(objective: WindowObjective) -> ObjectiveBuckets:
    """The ring the objective's metric needs."""
    if objective.metric in _QUANTILES:
        return SketchBuckets(objective)
    if objective.metric is ObjectiveMetric.ATTRIBUTE_MEAN:
        return MeanBuckets(objective)
    return CountBuckets(objective)
