"""Window objectives (issue 5): a metric over a sliding window of event time, compared with a
warning and a critical threshold (the config is `slo_targets_config.WindowObjective`).

Buckets. Event time is cut into epoch-aligned buckets of `bucket_ms`: bucket k holds
`[k * bucket_ms, (k + 1) * bucket_ms)`. `bucket_ms = ceil(window_ms / buckets)` with 12 buckets
for the quantile metrics (a sketch per bucket: merging them is the costly part) and 60 for
the others (counters). The effective window, `buckets * bucket_ms`, equals `window_ms`
whenever the bucket count divides it (every whole-minute window does) and is less than
`buckets` ms longer otherwise.

Window. "Now" is the newest event time seen (by `record` or `advance`). The window is the
`buckets` buckets ending with the one holding now: `[window_start_ms, now]` with
`window_start_ms = (now // bucket_ms - buckets + 1) * bucket_ms`. An evaluation at a bucket
boundary B sees exactly `[B - effective window, B)`; one after a record sees between
`effective window - bucket_ms` and `effective window` of the latest event time (1/60 or 1/12 of
the window less, just after a boundary). Data leaves the window a whole bucket at a time.

Evaluations happen (1) when event time crosses a bucket boundary, once per boundary crossed,
with the window that closes there, and (2) after every `record`, with the window at now.
`advance` only crosses boundaries, so advancing in big steps or small steps (and recording in
between) gives exactly the same outputs: every boundary is evaluated once, in order, on the
same data. The tracker's history begins at the first event time it sees (record or advance):
its bucket is the first one, and its level is OK since then. A long gap evaluates each
boundary until the window is empty and its verdict settled; the remaining ones would all
repeat it, so they are skipped.

Values:
- AVAILABILITY good / valid, ERROR_RATE (valid - good) / valid (None without valid calls);
- THROUGHPUT valid calls per minute over the part of the window that has elapsed
  (`now + 1 - window_start_ms`, the effective window at a boundary), 0 when empty;
- LATENCY_QUANTILE / ATTRIBUTE_QUANTILE the `quantile` of the merged bucket sketches
  (`sketch.QuantileSketch`: within its relative accuracy, 1 % by default, of the exact lower
  quantile of the values in the window; None when empty);
- ATTRIBUTE_MEAN value_sum / value_count (None without values).
Inputs may be pre-aggregated upstream (per second, say): counts, a sketch, a sum and count;
those the metric does not use are ignored. Sketches passed in must use the default accuracy
(they are merged, into their bucket's sketch and into one sketch of the whole window, which is
rebuilt from the buckets when a non-empty bucket leaves; the sorted bucket indexes are cached
so that a p95 after each record costs a walk over the top buckets, not a merge and a sort).

Levels: CRITICAL if `objective.is_past(value, critical_at)`, else WARNING if past
`warning_at`, else OK. No verdict (the level stays as it was, OK at first) when the value is
None or fewer than `min_events` values are in the window (calls, sketch values or attribute
values), except THROUGHPUT, which ignores `min_events` (few calls is what it measures) but
gives no verdict until its window lies wholly after the tracker's first bucket (a window
reaching back before the tracker saw anything would read as a traffic drop). A change of level
is one `LevelChanged`, stamped with the evaluation time (the boundary, or now after a record).

Late data: a record older than now counts in its bucket while that bucket is in the window;
older still, it is not counted and its values are tallied in `late_events`. `advance` to a time
before now does nothing (time never goes backwards).

Pure: no I/O, no clock, no randomness. Memory per tracker is bounded: the ring of buckets (a
sketch holds at most its `max_buckets` entries), whatever the traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workers.kernels.sketch import QuantileSketch
from workers.kernels.slo_targets_config import Level, ObjectiveMetric, WindowObjective

SKETCH_BUCKETS = 12
COUNTER_BUCKETS = 60
_MINUTE_MS = 60_000

_COUNTS = 0
_MEAN = 1
_SKETCH = 2


@dataclass(frozen=True, slots=True)
class LevelChanged:
    """The objective's level changed at `ts_ms` (a bucket boundary, or the time of a record)."""

    objective_id: str
    ts_ms: int
    from_level: Level
    to_level: Level
    value: float
    threshold: float
    """`critical_at` entering CRITICAL, else `warning_at` (entering WARNING or back to OK)."""
    since_ms: int
    """When `from_level` began (the tracker's first event time for the initial OK)."""


ObjectiveOutput = LevelChanged


@dataclass(frozen=True, slots=True)
class ObjectiveSnapshot:
    """The latest evaluation (None fields: nothing seen yet)."""

    objective_id: str
    value: float | None
    level: Level
    level_since_ms: int | None
    events_in_window: int
    window_start_ms: int | None
    updated_ms: int | None
    """Time of the latest evaluation: a bucket boundary, or the newest record's time."""
    late_events: int


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


class ObjectiveTracker:
    """One objective's sliding window and level; see the module docstring."""

    __slots__ = (
        "_closed_sum",
        "_count_total",
        "_counts",
        "_cur",
        "_events",
        "_good",
        "_good_total",
        "_kind",
        "_level",
        "_level_since_ms",
        "_now_ms",
        "_origin_ms",
        "_settled_empty",
        "_sketches",
        "_sums",
        "_updated_ms",
        "_valid",
        "_valid_total",
        "_value",
        "_window_keys",
        "_window_sketch",
        "_window_start_ms",
        "bucket_ms",
        "buckets",
        "late_events",
        "objective",
    )

    def __init__(self, objective: WindowObjective) -> None:
        self.objective = objective
        metric = objective.metric
        if metric in (ObjectiveMetric.LATENCY_QUANTILE, ObjectiveMetric.ATTRIBUTE_QUANTILE):
            self._kind = _SKETCH
        elif metric is ObjectiveMetric.ATTRIBUTE_MEAN:
            self._kind = _MEAN
        else:
            self._kind = _COUNTS
        n = SKETCH_BUCKETS if self._kind == _SKETCH else COUNTER_BUCKETS
        self.buckets = n
        self.bucket_ms = -(-objective.window_ms // n)
        counters = self._kind == _COUNTS
        self._valid = [0] * n if counters else []
        self._good = [0] * n if counters else []
        self._sums = [0.0] * n if self._kind == _MEAN else []
        self._counts = [0] * n if self._kind == _MEAN else []
        self._sketches = [QuantileSketch() for _ in range(n)] if self._kind == _SKETCH else []
        self._window_sketch = QuantileSketch()
        """The bucket sketches of the window merged (rebuilt when a non-empty one leaves)."""
        self._window_keys: list[int] | None = None
        """Its bucket indexes, descending; None when they must be sorted again."""
        self._valid_total = 0
        self._good_total = 0
        self._count_total = 0
        self._closed_sum = 0.0
        """fsum of the attribute sums of the window's buckets before the current one."""
        self._cur: int | None = None
        """Index of the bucket holding now; None until the first event time."""
        self._now_ms = 0
        self._origin_ms = 0
        self._level = Level.OK
        self._level_since_ms: int | None = None
        self._value: float | None = None
        self._events = 0
        self._window_start_ms: int | None = None
        self._updated_ms: int | None = None
        self._settled_empty = False
        self.late_events = 0

    # --- input ---

    def record(
        self,
        ts_ms: int,
        *,
        valid: int = 0,
        good: int = 0,
        sketch: QuantileSketch | None = None,
        value_sum: float = 0.0,
        value_count: int = 0,
    ) -> list[ObjectiveOutput]:
        """Count (pre-aggregated) values at event time `ts_ms`; returns the level changes of
        the boundaries crossed to get there and of the evaluation after the record."""
        if valid < 0 or not 0 <= good <= valid:
            raise ValueError(f"need 0 <= good <= valid, not good={good!r} valid={valid!r}")
        if value_count < 0 or (value_count == 0 and value_sum != 0) or not math.isfinite(value_sum):
            raise ValueError(
                f"need value_count >= 0, a finite value_sum and no sum without values, "
                f"not {value_sum!r} / {value_count!r}"
            )
        outputs = self.advance(ts_ms)
        cur = self._cur
        assert cur is not None
        k = ts_ms // self.bucket_ms
        n = self.buckets
        kind = self._kind
        if k <= cur - n:  # its bucket has left the window
            if kind == _COUNTS:
                self.late_events += valid
            elif kind == _MEAN:
                self.late_events += value_count
            elif sketch is not None:
                self.late_events += sketch.count
            return outputs
        i = k % n
        if kind == _COUNTS:
            self._valid[i] += valid
            self._good[i] += good
            self._valid_total += valid
            self._good_total += good
        elif kind == _MEAN:
            self._sums[i] += value_sum
            self._counts[i] += value_count
            self._count_total += value_count
            if k < cur:
                self._closed_sum = self._sum_closed()
        elif sketch is not None and sketch.count:
            self._sketches[i].merge(sketch)
            window = self._window_sketch
            known = len(window.bins)
            window.merge(sketch)
            if len(window.bins) != known or window.collapsed_below is not None:
                self._window_keys = None  # merging only adds buckets: new ones, or a collapse
        change = self._evaluate(self._now_ms + 1, self._now_ms)
        if change is not None:
            outputs.append(change)
        return outputs

    def advance(self, ts_ms: int) -> list[ObjectiveOutput]:
        """Event time reached `ts_ms`: evaluate every bucket boundary crossed, in order."""
        bucket_ms = self.bucket_ms
        if self._cur is None:
            self._cur = ts_ms // bucket_ms
            self._origin_ms = self._cur * bucket_ms
            self._now_ms = ts_ms
            self._level_since_ms = ts_ms
            return []
        if ts_ms <= self._now_ms:
            return []
        self._now_ms = ts_ms
        target = ts_ms // bucket_ms
        outputs: list[ObjectiveOutput] = []
        while self._cur < target:
            if self._settled_empty and self._window_events() == 0:
                # Every boundary left evaluates this same empty window: no verdict, or the
                # verdict already given. Skip to the last one.
                self._cur = target
                self._updated_ms = target * bucket_ms
                self._window_start_ms = (target - self.buckets) * bucket_ms
                break
            boundary = (self._cur + 1) * bucket_ms
            change = self._evaluate(boundary, boundary)
            if change is not None:
                outputs.append(change)
            self._roll()
        return outputs

    # --- reading ---

    def snapshot(self) -> ObjectiveSnapshot:
        return ObjectiveSnapshot(
            objective_id=self.objective.objective_id,
            value=self._value,
            level=self._level,
            level_since_ms=self._level_since_ms,
            events_in_window=self._events,
            window_start_ms=self._window_start_ms,
            updated_ms=self._updated_ms,
            late_events=self.late_events,
        )

    @property
    def level(self) -> Level:
        return self._level

    @property
    def window_ms(self) -> int:
        """The effective window: `buckets * bucket_ms` (>= objective.window_ms)."""
        return self.buckets * self.bucket_ms

    # --- internals ---

    def _window_events(self) -> int:
        kind = self._kind
        if kind == _COUNTS:
            return self._valid_total
        if kind == _MEAN:
            return self._count_total
        return self._window_sketch.count

    def _sum_closed(self) -> float:
        assert self._cur is not None
        current = self._cur % self.buckets
        return math.fsum(s for j, s in enumerate(self._sums) if j != current)

    def _roll(self) -> None:
        """Make the next bucket current, dropping the one that leaves the window."""
        assert self._cur is not None
        self._cur += 1
        i = self._cur % self.buckets  # the slot of the bucket leaving the window
        kind = self._kind
        if kind == _COUNTS:
            self._valid_total -= self._valid[i]
            self._good_total -= self._good[i]
            self._valid[i] = 0
            self._good[i] = 0
        elif kind == _MEAN:
            self._count_total -= self._counts[i]
            self._sums[i] = 0.0
            self._counts[i] = 0
            self._closed_sum = self._sum_closed()
        else:
            sketches = self._sketches
            if sketches[i].count:
                sketches[i].clear()
                window = self._window_sketch
                window.clear()
                self._window_keys = None
                for other in sketches:
                    if other.count:
                        window.merge(other)

    def _evaluate(self, end_ms: int, at_ms: int) -> LevelChanged | None:
        """Evaluate the window of the current bucket, up to `end_ms` (exclusive), at `at_ms`."""
        assert self._cur is not None
        objective = self.objective
        bucket_ms = self.bucket_ms
        window_start = (self._cur - self.buckets + 1) * bucket_ms
        metric = objective.metric
        kind = self._kind
        value: float | None
        if kind == _COUNTS:
            events = valid = self._valid_total
            if metric is ObjectiveMetric.THROUGHPUT:
                value = valid * _MINUTE_MS / (end_ms - window_start)
            elif valid == 0:
                value = None
            elif metric is ObjectiveMetric.AVAILABILITY:
                value = self._good_total / valid
            else:  # (valid - good) / valid, not 1 - good / valid: 2 % must not read 2.0000001 %
                value = (valid - self._good_total) / valid
        elif kind == _MEAN:
            events = self._count_total
            current = self._sums[self._cur % self.buckets]
            value = (self._closed_sum + current) / events if events else None
        else:
            window = self._window_sketch
            events = window.count
            q = objective.quantile
            assert q is not None
            keys = self._window_keys
            if keys is None and q >= 0.5:
                keys = self._window_keys = sorted(window.bins, reverse=True)
            value = window_quantile(window, q, keys)
        self._value = value
        self._events = events
        self._window_start_ms = window_start
        self._updated_ms = at_ms
        throughput = metric is ObjectiveMetric.THROUGHPUT
        if value is None:
            self._settled_empty = events == 0
            return None
        if throughput:
            if window_start < self._origin_ms:
                self._settled_empty = False
                return None
        elif events < objective.min_events:
            self._settled_empty = events == 0
            return None
        self._settled_empty = events == 0
        if objective.is_past(value, objective.critical_at):
            level = Level.CRITICAL
        elif objective.is_past(value, objective.warning_at):
            level = Level.WARNING
        else:
            level = Level.OK
        if level is self._level:
            return None
        threshold = objective.critical_at if level is Level.CRITICAL else objective.warning_at
        since = self._level_since_ms
        assert since is not None
        change = LevelChanged(
            objective_id=objective.objective_id,
            ts_ms=at_ms,
            from_level=self._level,
            to_level=level,
            value=value,
            threshold=threshold,
            since_ms=since,
        )
        self._level = level
        self._level_since_ms = at_ms
        return change
