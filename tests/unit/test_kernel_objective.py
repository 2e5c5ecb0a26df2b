"""Window objectives: levels from the seeds' thresholds (availability, p95 latency via the
sketch, throughput minimum, attribute mean), the min_events gate, the sliding window, late
records, and big steps == small steps (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.kernels.objective import LevelChanged, ObjectiveOutput, ObjectiveTracker
from workers.kernels.objective_buckets import COUNTER_BUCKETS, SKETCH_BUCKETS, window_quantile
from workers.kernels.sketch import QuantileSketch
from workers.kernels.slo_targets_config import Level, ObjectiveMetric, WindowObjective

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every bucket width used here
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def window_objective(
    objective_id: str,
    metric: ObjectiveMetric,
    levels: tuple[float, float, float],
    *,
    higher_is_better: bool,
    window_ms: int = HOUR_MS,
    **extra: Any,
) -> WindowObjective:
    """A window objective; `levels` are its (target, warning_at, critical_at)."""
    target, warning_at, critical_at = levels
    return WindowObjective(
        objective_id=objective_id,
        metric=metric,
        window_ms=window_ms,
        target=target,
        warning_at=warning_at,
        critical_at=critical_at,
        higher_is_better=higher_is_better,
        **extra,
    )


def availability(min_events: int = 20) -> WindowObjective:
    return window_objective(
        "fusion_availability",
        ObjectiveMetric.AVAILABILITY,
        (0.995, 0.990, 0.985),
        higher_is_better=True,
        min_events=min_events,
    )


def error_rate() -> WindowObjective:
    return window_objective(
        "fusion_error_rate", ObjectiveMetric.ERROR_RATE, (0.01, 0.02, 0.05), higher_is_better=False
    )


def latency_p95() -> WindowObjective:
    return window_objective(
        "fusion_latency_p95",
        ObjectiveMetric.LATENCY_QUANTILE,
        (2000, 3000, 5000),
        higher_is_better=False,
        quantile=0.95,
    )


def throughput() -> WindowObjective:
    return window_objective(
        "fusion_throughput_minimum",
        ObjectiveMetric.THROUGHPUT,
        (100, 80, 50),
        higher_is_better=True,
        window_ms=15 * MINUTE_MS,
    )


def quality() -> WindowObjective:
    return window_objective(
        "fusion_quality_score",
        ObjectiveMetric.ATTRIBUTE_MEAN,
        (0.85, 0.80, 0.75),
        higher_is_better=True,
        attribute="quality_score",
        min_events=5,
    )


def sketch_of(values: list[float]) -> QuantileSketch:
    sketch = QuantileSketch()
    for value in values:
        sketch.add(value)
    return sketch


def levels(outputs: list[ObjectiveOutput]) -> list[tuple[Level, Level]]:
    return [(o.from_level, o.to_level) for o in outputs]


# --- buckets ---


def test_bucket_widths() -> None:
    counters = ObjectiveTracker(availability())
    assert (counters.buckets, counters.bucket_ms) == (COUNTER_BUCKETS, MINUTE_MS)
    sketches = ObjectiveTracker(latency_p95())
    assert (sketches.buckets, sketches.bucket_ms) == (SKETCH_BUCKETS, 5 * MINUTE_MS)
    assert sketches.window_ms == HOUR_MS
    odd_tracker = ObjectiveTracker(replace(availability(), window_ms=1_000_001))
    assert odd_tracker.bucket_ms == 16_667
    assert 0 <= odd_tracker.window_ms - 1_000_001 < COUNTER_BUCKETS


# --- availability ---


def test_availability_warning_critical_and_back() -> None:
    tracker = ObjectiveTracker(availability())
    out: list[ObjectiveOutput] = []
    # 1000 calls at 98.8 %: warning (below 0.990, not below 0.985)
    out += tracker.record(T0_MS, valid=1000, good=988)
    assert levels(out) == [(Level.OK, Level.WARNING)]
    change = out[0]
    assert change.value == pytest.approx(0.988)
    assert change.threshold == 0.990
    assert (change.ts_ms, change.since_ms) == (T0_MS, T0_MS)
    # add calls so that the window is at 98.4 %: critical
    out = tracker.record(T0_MS + 1000, valid=1000, good=980)
    assert levels(out) == [(Level.WARNING, Level.CRITICAL)]
    assert out[0].value == pytest.approx(0.984)
    assert out[0].threshold == 0.985
    assert out[0].since_ms == T0_MS
    # many good calls: back to OK in one change (through neither WARNING nor repeats)
    out = tracker.record(T0_MS + 2000, valid=8000, good=8000)
    assert levels(out) == [(Level.CRITICAL, Level.OK)]
    assert out[0].threshold == 0.990
    assert out[0].since_ms == T0_MS + 1000
    assert tracker.record(T0_MS + 3000, valid=100, good=100) == []
    snap = tracker.snapshot()
    assert snap.level is Level.OK
    assert snap.level_since_ms == T0_MS + 2000
    assert snap.events_in_window == 10_100
    assert snap.value == pytest.approx(10_068 / 10_100)
    assert snap.updated_ms == T0_MS + 3000
    assert snap.window_start_ms == T0_MS - 59 * MINUTE_MS


def test_error_rate() -> None:
    tracker = ObjectiveTracker(error_rate())
    out = tracker.record(T0_MS, valid=100, good=97)
    assert levels(out) == [(Level.OK, Level.WARNING)]
    assert out[0].value == pytest.approx(0.03)
    out = tracker.record(T0_MS + 1, valid=100, good=85)
    assert levels(out) == [(Level.WARNING, Level.CRITICAL)]


def test_min_events_gate_keeps_the_previous_level() -> None:
    tracker = ObjectiveTracker(availability(min_events=20))
    # 19 calls, all failed: no verdict
    assert tracker.record(T0_MS, valid=19, good=0) == []
    snap = tracker.snapshot()
    assert (snap.level, snap.value, snap.events_in_window) == (Level.OK, 0.0, 19)
    # the 20th: verdict
    assert levels(tracker.record(T0_MS + 1, valid=1, good=1)) == [(Level.OK, Level.CRITICAL)]
    # the window empties: too few events, the level stays CRITICAL
    assert tracker.advance(T0_MS + 2 * HOUR_MS) == []
    snap = tracker.snapshot()
    assert (snap.level, snap.value, snap.events_in_window) == (Level.CRITICAL, None, 0)
    # a few good calls are still too few
    assert tracker.record(T0_MS + 2 * HOUR_MS + 1, valid=10, good=10) == []
    assert levels(tracker.record(T0_MS + 2 * HOUR_MS + 2, valid=10, good=10)) == [
        (Level.CRITICAL, Level.OK)
    ]


def test_window_slides_old_data_leaves_at_the_boundary() -> None:
    tracker = ObjectiveTracker(availability())
    # bad minute at T0, good minute at T0 + 30 min
    assert levels(tracker.record(T0_MS, valid=100, good=90)) == [(Level.OK, Level.CRITICAL)]
    # 590 / 600 = 0.9833: still critical
    assert tracker.record(T0_MS + 30 * MINUTE_MS, valid=500, good=500) == []
    # the boundary at T0 + 60 min closes the window [T0, T0 + 60 min): still holds the bad
    # minute; the boundary at T0 + 61 min closes [T0 + 1 min, T0 + 61 min): it is gone
    out = tracker.advance(T0_MS + 60 * MINUTE_MS)
    assert out == []
    out = tracker.advance(T0_MS + 61 * MINUTE_MS - 1)
    assert out == []
    out = tracker.advance(T0_MS + 61 * MINUTE_MS)
    assert out == [
        LevelChanged(
            objective_id="fusion_availability",
            ts_ms=T0_MS + 61 * MINUTE_MS,
            from_level=Level.CRITICAL,
            to_level=Level.OK,
            value=1.0,
            threshold=0.990,
            since_ms=T0_MS,
        )
    ]
    snap = tracker.snapshot()
    assert snap.window_start_ms == T0_MS + MINUTE_MS
    assert snap.events_in_window == 500


def test_late_records_count_in_their_bucket_while_it_is_held() -> None:
    tracker = ObjectiveTracker(availability())
    tracker.record(T0_MS + 30 * MINUTE_MS, valid=1000, good=1000)
    # 29 minutes late: its bucket is still in the window
    out = tracker.record(T0_MS + MINUTE_MS, valid=100, good=80)
    assert levels(out) == [(Level.OK, Level.CRITICAL)]
    assert out[0].ts_ms == T0_MS + 30 * MINUTE_MS  # evaluated at now, not at the late time
    assert tracker.snapshot().events_in_window == 1100
    # older than the window: not counted, tallied
    assert tracker.record(T0_MS - 30 * MINUTE_MS, valid=7, good=0) == []
    snap = tracker.snapshot()
    assert (snap.events_in_window, snap.late_events) == (1100, 7)
    # the late bucket leaves the window with its minute
    out = tracker.advance(T0_MS + 62 * MINUTE_MS)
    assert levels(out) == [(Level.CRITICAL, Level.OK)]
    assert out[0].ts_ms == T0_MS + 62 * MINUTE_MS
    # advance backwards: nothing
    assert tracker.advance(T0_MS) == []


def test_record_validation() -> None:
    tracker = ObjectiveTracker(availability())
    with pytest.raises(ValueError, match="good <= valid"):
        tracker.record(T0_MS, valid=1, good=2)
    with pytest.raises(ValueError, match="good <= valid"):
        tracker.record(T0_MS, valid=-1)
    with pytest.raises(ValueError, match="value_count"):
        tracker.record(T0_MS, value_sum=1.0)


# --- latency quantile ---


def test_latency_p95_levels_from_the_sketch() -> None:
    tracker = ObjectiveTracker(latency_p95())
    # 100 calls: 90 fast, 10 at 4000 ms -> p95 (rank floor(.95 * 99) = 94) = 4000: warning
    out = tracker.record(T0_MS, sketch=sketch_of([100.0] * 90 + [4000.0] * 10))
    assert levels(out) == [(Level.OK, Level.WARNING)]
    assert out[0].value == pytest.approx(4000, rel=0.01)
    assert out[0].threshold == 3000
    # in another bucket: 100 more at 6000 -> p95 of 200 values = 6000: critical
    out = tracker.record(T0_MS + 10 * MINUTE_MS, sketch=sketch_of([6000.0] * 100))
    assert levels(out) == [(Level.WARNING, Level.CRITICAL)]
    assert out[0].value == pytest.approx(6000, rel=0.01)
    # fast traffic later: 110 of 1200 are slow, p95 (rank 1139) is 6000 still
    assert tracker.record(T0_MS + 40 * MINUTE_MS, sketch=sketch_of([200.0] * 1000)) == []
    # the bucket at T0 leaves at T0 + 65 min (p95 of 1100 values: 6000), the one at
    # T0 + 10 min at T0 + 75 min: OK
    out = tracker.advance(T0_MS + 75 * MINUTE_MS)
    assert levels(out) == [(Level.CRITICAL, Level.OK)]
    assert out[0].ts_ms == T0_MS + 75 * MINUTE_MS
    assert tracker.snapshot().events_in_window == 1000


def test_latency_min_events() -> None:
    tracker = ObjectiveTracker(latency_p95())
    assert tracker.record(T0_MS, sketch=sketch_of([9000.0] * 19)) == []
    assert tracker.snapshot().value == pytest.approx(9000, rel=0.01)
    assert levels(tracker.record(T0_MS + 1, sketch=sketch_of([9000.0]))) == [
        (Level.OK, Level.CRITICAL)
    ]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.floats(min_value=0.5, max_value=60_000.0), min_size=1, max_size=40),
        min_size=1,
        max_size=8,
    ),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_quantile_within_the_sketch_bound(batches: list[list[float]], q: float) -> None:
    objective = replace(latency_p95(), quantile=q, min_events=0)
    tracker = ObjectiveTracker(objective)
    every: list[float] = []
    for i, batch in enumerate(batches):
        # spread over buckets of the same window (5-minute buckets, 60-minute window)
        tracker.record(T0_MS + i * 5 * MINUTE_MS + i, sketch=sketch_of(batch))
        every += batch
        exact = sorted(every)[math.floor(q * (len(every) - 1))]
        value = tracker.snapshot().value
        assert value is not None
        assert abs(value - exact) <= 0.01 * exact + 1e-9


# --- throughput ---


def test_throughput_stops_critical_by_advance_alone() -> None:
    tracker = ObjectiveTracker(throughput())
    assert tracker.bucket_ms == 15_000
    out: list[ObjectiveOutput] = []
    # 120 calls a minute, 2 a second, for 20 minutes
    for second in range(20 * 60):
        out += tracker.record(T0_MS + second * 1000, valid=2, good=2)
    assert out == []  # 120 rpm is fine; no verdict on the first, partial window either
    assert tracker.snapshot().value == pytest.approx(120, rel=0.01)
    stop = T0_MS + 20 * MINUTE_MS
    # traffic stops: the rate falls as the window slides, all by clock events
    out = tracker.advance(stop + 15 * MINUTE_MS)
    assert levels(out) == [(Level.OK, Level.WARNING), (Level.WARNING, Level.CRITICAL)]
    warning, critical = out
    # the window [B - 15 min, B) at B = stop + m minutes holds 120 * (15 - m) calls: a rate
    # of 8 * (15 - m) per minute, below 80 for m > 5 (first boundary: 5:15, 78)
    assert warning.ts_ms == stop + 5 * MINUTE_MS + 15_000
    assert warning.threshold == 80
    # at stop + 8:45 the rate is 8 * 6.25 = 50, not below 50; at stop + 9 min it is 48
    assert critical.ts_ms == stop + 9 * MINUTE_MS
    assert critical.value < 50
    assert critical.threshold == 50
    snap = tracker.snapshot()
    assert (snap.value, snap.events_in_window, snap.level) == (0.0, 0, Level.CRITICAL)
    assert snap.updated_ms == stop + 15 * MINUTE_MS
    # traffic again: back through WARNING to OK as the rate recovers
    out = []
    for second in range(15 * 60):
        out += tracker.record(stop + 16 * MINUTE_MS + second * 1000, valid=2, good=2)
    assert levels(out) == [(Level.CRITICAL, Level.WARNING), (Level.WARNING, Level.OK)]


def test_throughput_no_verdict_before_a_full_window() -> None:
    tracker = ObjectiveTracker(throughput())
    assert tracker.advance(T0_MS) == []
    # no traffic at all: critical once a whole window has passed, not before
    assert tracker.advance(T0_MS + 15 * MINUTE_MS - 1) == []
    out = tracker.advance(T0_MS + 15 * MINUTE_MS)
    assert levels(out) == [(Level.OK, Level.CRITICAL)]
    assert out[0].value == 0.0
    assert tracker.advance(T0_MS + 100 * HOUR_MS) == []
    assert tracker.snapshot().updated_ms == T0_MS + 100 * HOUR_MS


# --- attribute mean ---


def test_attribute_mean() -> None:
    tracker = ObjectiveTracker(quality())
    assert tracker.record(T0_MS, value_sum=3.6, value_count=4) == []  # 4 < min_events 5
    assert tracker.snapshot().value == pytest.approx(0.9)
    out = tracker.record(T0_MS + MINUTE_MS, value_sum=0.5, value_count=2)  # 4.1 / 6 = 0.683
    assert levels(out) == [(Level.OK, Level.CRITICAL)]
    assert out[0].value == pytest.approx(4.1 / 6)
    out = tracker.record(T0_MS + 2 * MINUTE_MS, value_sum=5.4, value_count=6)  # 9.5 / 12
    assert levels(out) == [(Level.CRITICAL, Level.WARNING)]
    assert out[0].threshold == 0.80
    # the good first minute leaves first ((0.5 + 5.4) / 8 = 0.74: critical), then the low one
    # ((5.4) / 6 = 0.9: OK), each at the boundary that closes its window
    out = tracker.advance(T0_MS + 62 * MINUTE_MS)
    assert levels(out) == [(Level.WARNING, Level.CRITICAL), (Level.CRITICAL, Level.OK)]
    assert [o.ts_ms for o in out] == [T0_MS + 61 * MINUTE_MS, T0_MS + 62 * MINUTE_MS]
    assert out[0].value == pytest.approx(5.9 / 8)
    assert out[1].value == pytest.approx(0.9)
    assert out[1].since_ms == T0_MS + 61 * MINUTE_MS


def test_attribute_quantile() -> None:
    memory_p95 = window_objective(
        "memory_utilization_p95",
        ObjectiveMetric.ATTRIBUTE_QUANTILE,
        (512, 768, 1024),
        higher_is_better=False,
        quantile=0.95,
        attribute="memory_mb",
    )
    tracker = ObjectiveTracker(memory_p95)
    out = tracker.record(T0_MS, sketch=sketch_of([800.0] * 30))
    assert levels(out) == [(Level.OK, Level.WARNING)]


# --- big steps == small steps ---

Step = tuple[str, int, int, int]


class _NoSkip(ObjectiveTracker):
    """Evaluates every boundary of a gap (the skip over empty windows disabled)."""

    __slots__ = ()

    def _window_events(self) -> int:
        return 1


def _run(
    objective: WindowObjective,
    steps: list[Step],
    factory: type[ObjectiveTracker] = ObjectiveTracker,
) -> list[object]:
    tracker = factory(objective)
    out: list[object] = []
    for kind, ts, a, b in steps:
        if kind == "advance":
            out += tracker.advance(ts)
        elif objective.metric is ObjectiveMetric.LATENCY_QUANTILE:
            out += tracker.record(ts, sketch=sketch_of([float(a * 37 % 9000)] * (b + 1)))
        elif objective.metric is ObjectiveMetric.ATTRIBUTE_MEAN:
            out += tracker.record(ts, value_sum=a / 100 * b, value_count=b)
        else:
            out += tracker.record(ts, valid=a, good=min(a, b))
    out.append(tracker.snapshot())
    return out


@settings(max_examples=80, deadline=None)
@given(
    which=st.sampled_from(["availability", "latency", "throughput", "quality"]),
    records=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40 * MINUTE_MS),  # gap to the previous record
            st.integers(min_value=-20 * MINUTE_MS, max_value=0),  # lateness
            st.integers(min_value=0, max_value=60),
            st.integers(min_value=0, max_value=60),
        ),
        min_size=1,
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=97), max_size=5),
    tail=st.integers(min_value=0, max_value=3 * HOUR_MS),
)
def test_big_steps_equal_small_steps(
    which: str,
    records: list[tuple[int, int, int, int]],
    cuts: list[int],
    tail: int,
) -> None:
    objective = {
        "availability": availability(min_events=3),
        "latency": latency_p95(),
        "throughput": throughput(),
        "quality": quality(),
    }[which]
    # the tracker's history starts at the first time it sees: the same in both runs
    big: list[Step] = [("advance", T0_MS + 7, 0, 0)]
    small: list[Step] = [("advance", T0_MS + 7, 0, 0)]
    now = clock = T0_MS + 7
    for gap, late, a, b in records:
        now += gap
        ts = now + late
        if ts > clock:
            # clock events in between, at fractions of the time to the next record
            small += [("advance", clock + (ts - clock) * c // 100, 0, 0) for c in sorted(cuts)]
            clock = ts
        step: Step = ("record", ts, a, b)
        big.append(step)
        small.append(step)
    end = clock + tail
    small += [("advance", clock + tail * c // 100, 0, 0) for c in sorted(cuts)]
    big.append(("advance", end, 0, 0))
    small.append(("advance", end, 0, 0))
    expected = _run(objective, big)
    assert _run(objective, small) == expected
    assert _run(objective, big, _NoSkip) == expected


def test_determinism_same_input_same_output() -> None:
    steps: list[Step] = [
        ("record", T0_MS + i * 7_919 * 13, i % 50, (i * 7) % 50) for i in range(400)
    ]
    steps.append(("advance", T0_MS + 10 * HOUR_MS, 0, 0))
    assert _run(availability(), steps) == _run(availability(), steps)
    assert _run(latency_p95(), steps) == _run(latency_p95(), steps)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e6)), min_size=0, max_size=60
    ),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_window_quantile_is_the_sketch_quantile(values: list[float], q: float) -> None:
    sketch = sketch_of(values)
    keys = sorted(sketch.bins, reverse=True)
    assert window_quantile(sketch, q) == sketch.quantile(q)
    assert window_quantile(sketch, q, keys) == sketch.quantile(q)


def test_error_rate_at_the_threshold_is_not_past_it() -> None:
    tracker = ObjectiveTracker(error_rate())
    assert tracker.record(T0_MS, valid=1000, good=980) == []  # 1 - 0.98 would be 0.0200000..2
    assert tracker.snapshot().value == 0.02
