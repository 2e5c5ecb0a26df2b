"""Window objectives (issue 5): a metric over a sliding window of event time, compared with a
warning and a critical threshold (the config is `slo_targets_config.WindowObjective`).

Buckets. Event time is cut into epoch-aligned buckets of `bucket_ms`: bucket k holds
`[k * bucket_ms, (k + 1) * bucket_ms)`, in a `bucket_ring.BucketRing` with Resilience4j's
edge (one fold per kind of metric, `objective_buckets`). `bucket_ms = ceil(window_ms /
buckets)` with 12 buckets for the quantile metrics (a sketch per bucket: merging them is the
costly part) and 60 for the others (counters). The effective window, `buckets * bucket_ms`,
equals `window_ms` whenever the bucket count divides it (every whole-minute window does) and
is less than `buckets` ms longer otherwise.

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

from workers.kernels.bucket_ring import NOT_STARTED
from workers.kernels.objective_buckets import ObjectiveBuckets, buckets_for
from workers.kernels.sketch import QuantileSketch
from workers.kernels.slo_targets_config import Level, ObjectiveMetric, WindowObjective


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


class ObjectiveTracker:
    """One objective's sliding window and level; see the module docstring."""

    __slots__ = (
        "_buckets",
        "_events",
        "_level",
        "_level_since_ms",
        "_origin_ms",
        "_settled_empty",
        "_updated_ms",
        "_value",
        "_window_start_ms",
        "late_events",
        "objective",
    )

    def __init__(self, objective: WindowObjective) -> None:
        self.objective = objective
        self._buckets: ObjectiveBuckets = buckets_for(objective)
        self._origin_ms = 0
        """Start of the first bucket (the tracker's history begins there)."""
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
        buckets = self._buckets
        # Crossing a bucket boundary evaluates it first; within the head bucket `place` moves
        # time by itself.
        outputs = self.advance(ts_ms) if ts_ms >= buckets.turn_ms else []
        slot = buckets.place(ts_ms)
        values = (valid, good, sketch, value_sum, value_count)
        if slot < 0:  # its bucket has left the window
            self.late_events += buckets.count(values)
            return outputs
        buckets.add(slot, values)
        now = buckets.now_ms
        change = self._evaluate(now + 1, now)
        if change is not None:
            outputs.append(change)
        return outputs

    def advance(self, ts_ms: int) -> list[ObjectiveOutput]:
        """Event time reached `ts_ms`: evaluate every bucket boundary crossed, in order."""
        buckets = self._buckets
        if ts_ms <= buckets.now_ms:
            return []
        if buckets.now_ms == NOT_STARTED:
            buckets.advance(ts_ms)
            self._origin_ms = buckets.head * buckets.bucket_ms
            self._level_since_ms = ts_ms
            return []
        outputs: list[ObjectiveOutput] = []
        if ts_ms >= buckets.turn_ms:  # into a later bucket
            self._cross_boundaries(ts_ms, outputs)
        buckets.advance(ts_ms)
        return outputs

    def _cross_boundaries(self, ts_ms: int, outputs: list[ObjectiveOutput]) -> None:
        buckets = self._buckets
        bucket_ms = buckets.bucket_ms
        target = ts_ms // bucket_ms
        while buckets.head < target:
            if self._settled_empty and self._window_events() == 0:
                # Every boundary left evaluates this same empty window: no verdict, or the
                # verdict already given. Skip to the last one.
                self._updated_ms = target * bucket_ms
                self._window_start_ms = (target - buckets.buckets) * bucket_ms
                return
            boundary = (buckets.head + 1) * bucket_ms
            change = self._evaluate(boundary, boundary)
            if change is not None:
                outputs.append(change)
            buckets.advance(boundary)  # the next bucket: the oldest one leaves

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
    def buckets(self) -> int:
        return self._buckets.buckets

    @property
    def bucket_ms(self) -> int:
        return self._buckets.bucket_ms

    @property
    def window_ms(self) -> int:
        """The effective window: `buckets * bucket_ms` (>= objective.window_ms)."""
        return self._buckets.window_ms

    # --- evaluation ---

    def _window_events(self) -> int:
        """Values in the window (what the skip over a gap's empty boundaries looks at)."""
        return self._buckets.events

    def _evaluate(self, end_ms: int, at_ms: int) -> LevelChanged | None:
        """Evaluate the window of the head bucket, up to `end_ms` (exclusive), at `at_ms`."""
        buckets = self._buckets
        objective = self.objective
        value = buckets.value(objective, end_ms)
        events = buckets.events
        window_start = buckets.oldest * buckets.bucket_ms
        self._value = value
        self._events = events
        self._window_start_ms = window_start
        self._updated_ms = at_ms
        if value is None:
            self._settled_empty = events == 0
            return None
        if objective.metric is ObjectiveMetric.THROUGHPUT:
            # Few calls is what it measures (no min_events), but a window reaching back
            # before the tracker's first bucket would read as a traffic drop.
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
        return None if level is self._level else self._change_to(level, value, at_ms)

    def _change_to(self, level: Level, value: float, at_ms: int) -> LevelChanged:
        objective = self.objective
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
