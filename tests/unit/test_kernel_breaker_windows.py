"""Sliding windows: Resilience4j's window tests with the same numbers, plus lateness, exact cost
channels and hypothesis properties (totals equal a brute-force recount of the records inside
the window). Most tests track cost and duration, which breakers only ask for when needed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.breaker_windows import CountWindow, Outcome, TimeWindow, WindowSnapshot


def count_window(size: int) -> CountWindow:
    return CountWindow(size, track_cost=True, track_duration=True)


def time_window(window_s: int, bucket_s: int = 1, allowed_lateness_ms: int = 0) -> TimeWindow:
    return TimeWindow(window_s, bucket_s, allowed_lateness_ms, track_cost=True, track_duration=True)


# Resilience4j's MockClock starts at 2019-08-04T12:00:00Z.
T0_MS = 1_564_920_000_000

SUCCESS = Outcome(failed=False, slow=False, duration_ms=100)
ERROR = Outcome(failed=True, slow=False, duration_ms=100)
SLOW_SUCCESS = Outcome(failed=False, slow=True, duration_ms=100)
SLOW_ERROR = Outcome(failed=True, slow=True, duration_ms=100)


def _counts(s: WindowSnapshot) -> tuple[int, int, int, float]:
    """(calls, successful, failed, total duration ms), the tuple Resilience4j's tests check."""
    return s.total_calls, s.successful_calls, s.failed_calls, s.total_duration_ms


def _windows() -> list[CountWindow | TimeWindow]:
    return [count_window(5), time_window(5)]


# --- both kinds: FixedSizeSlidingWindowMetricsTest / SlidingTimeWindowMetricsTest basics ---


@pytest.mark.parametrize("window", _windows(), ids=["count", "time"])
def test_initial_snapshot_is_empty(window: CountWindow | TimeWindow) -> None:
    s = window.snapshot()
    assert _counts(s) == (0, 0, 0, 0)
    assert (s.slow_calls, s.slow_successful_calls, s.slow_failed_calls) == (0, 0, 0)
    assert s.average_duration_ms == 0
    assert s.failure_rate_pct == 0
    assert s.total_cost_usd == 0


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        # outcome: (calls, successful, failed, slow, slow successful, slow failed, failure %)
        (SUCCESS, (1, 1, 0, 0, 0, 0, 0.0)),
        (ERROR, (1, 0, 1, 0, 0, 0, 100.0)),
        (SLOW_SUCCESS, (1, 1, 0, 1, 1, 0, 0.0)),
    ],
    ids=["success", "error", "slow_success"],
)
@pytest.mark.parametrize("kind", ["count", "time"])
def test_record_one(kind: str, outcome: Outcome, expected: tuple[int, ...]) -> None:
    window = count_window(5) if kind == "count" else time_window(5)
    assert window.record(outcome, T0_MS) is True
    s = window.snapshot()
    got = (
        s.total_calls,
        s.successful_calls,
        s.failed_calls,
        s.slow_calls,
        s.slow_successful_calls,
        s.slow_failed_calls,
        s.failure_rate_pct,
    )
    assert got == expected
    assert s.total_duration_ms == 100
    assert s.average_duration_ms == 100


@pytest.mark.parametrize("window", _windows(), ids=["count", "time"])
def test_slow_calls_percentage(window: CountWindow | TimeWindow) -> None:
    window.record(Outcome(failed=False, slow=True, duration_ms=10_000), T0_MS)
    window.record(Outcome(failed=True, slow=True, duration_ms=10_000), T0_MS)
    for _ in range(3):
        window.record(SUCCESS, T0_MS)
    s = window.snapshot()
    assert (s.total_calls, s.successful_calls, s.slow_calls) == (5, 4, 2)
    assert (s.slow_successful_calls, s.slow_failed_calls) == (1, 1)
    assert s.total_duration_ms == 20_300
    assert s.average_duration_ms == 4060
    assert s.slow_call_rate_pct == 40


# --- FixedSizeSlidingWindowMetricsTest ---


def test_count_window_slides_after_size_records() -> None:
    window = count_window(4)
    steps = [
        # (outcome, calls, successful, failed, duration ms, failure %)
        (ERROR, 1, 0, 1, 100, 100.0),
        (SUCCESS, 2, 1, 1, 200, 50.0),
        (SUCCESS, 3, 2, 1, 300, 100 / 3),
        (SUCCESS, 4, 3, 1, 400, 25.0),
        (SUCCESS, 4, 4, 0, 400, 0.0),  # the first error leaves the window
    ]
    for outcome, calls, ok, failed, duration, rate in steps:
        window.record(outcome, T0_MS)
        s = window.snapshot()
        assert _counts(s) == (calls, ok, failed, duration)
        assert s.average_duration_ms == 100
        assert s.failure_rate_pct == pytest.approx(rate)


def test_count_window_slides_slow_calls_out() -> None:
    window = count_window(2)
    steps = [
        # (outcome, calls, slow, successful, failed, slow successful, slow failed)
        (SLOW_ERROR, 1, 1, 0, 1, 0, 1),
        (SLOW_SUCCESS, 2, 2, 1, 1, 1, 1),
        (SUCCESS, 2, 1, 2, 0, 1, 0),
        (SUCCESS, 2, 0, 2, 0, 0, 0),
        (SUCCESS, 2, 0, 2, 0, 0, 0),
    ]
    for outcome, calls, slow, ok, failed, slow_ok, slow_failed in steps:
        window.record(outcome, T0_MS)
        s = window.snapshot()
        got = (s.total_calls, s.slow_calls, s.successful_calls, s.failed_calls)
        assert got == (calls, slow, ok, failed)
        assert (s.slow_successful_calls, s.slow_failed_calls) == (slow_ok, slow_failed)
        assert s.total_duration_ms == 100 * calls


# --- SlidingTimeWindowMetricsTest ---


def test_time_window_buckets_are_keyed_by_epoch_second() -> None:
    window = time_window(5)
    assert window.buckets == 5
    assert window.bucket_key_s(T0_MS + 999) == T0_MS // 1000
    assert time_window(60, bucket_s=10).bucket_key_s(T0_MS + 15_000) == T0_MS // 1000 + 10


def test_time_window_clears_after_window_without_records() -> None:
    window = time_window(5)
    now = T0_MS
    window.record(ERROR, now)  # 1 call, failed, 100 ms
    assert window.snapshot().failure_rate_pct == 100
    now += 100
    window.record(SUCCESS, now)  # 2 calls, 50 %
    assert _counts(window.snapshot()) == (2, 1, 1, 200)
    assert window.snapshot().failure_rate_pct == 50
    now += 700
    window.record(Outcome(failed=True, slow=True, duration_ms=1000), now)
    s = window.snapshot()
    assert (*_counts(s), s.slow_failed_calls, s.average_duration_ms) == (3, 1, 2, 1200, 1, 400)
    now += 4000  # 4.8 s after the first record: its bucket (second 0) is still the oldest one
    window.advance(now)
    assert _counts(window.snapshot()) == (3, 1, 2, 1200)
    now += 1000  # second 5: bucket 0 is evicted, nothing left
    window.advance(now)
    s = window.snapshot()
    assert (*_counts(s), s.slow_failed_calls, s.failure_rate_pct) == (0, 0, 0, 0, 0, 0)
    now += 100
    window.record(SUCCESS, now)
    assert _counts(window.snapshot()) == (1, 1, 0, 100)
    now += 5000  # a whole window later: only the new record
    window.record(SUCCESS, now)
    assert _counts(window.snapshot()) == (1, 1, 0, 100)


def test_time_window_slides_second_by_second() -> None:
    window = time_window(5)
    steps = [
        # (advance ms, outcome, calls, successful, failed, duration ms)
        (0, ERROR, 1, 0, 1, 100),
        (100, SUCCESS, 2, 1, 1, 200),
        (100, SUCCESS, 3, 2, 1, 300),
        (1000, SUCCESS, 4, 3, 1, 400),
        (1000, SUCCESS, 5, 4, 1, 500),
        (1000, ERROR, 6, 4, 2, 600),
        (1000, SUCCESS, 7, 5, 2, 700),
        (1000, SUCCESS, 5, 4, 1, 500),  # second 5: the three calls of second 0 leave
        (1000, SUCCESS, 5, 4, 1, 500),
        (5000, SUCCESS, 1, 1, 0, 100),  # a whole window later: only this one
    ]
    now = T0_MS
    for advance_ms, outcome, *expected in steps:
        now += advance_ms
        assert window.record(outcome, now) is True
        assert _counts(window.snapshot()) == tuple(expected)


# --- beyond Resilience4j: lateness, cost, config validation ---


def test_late_record_goes_to_its_own_bucket_while_in_window() -> None:
    window = time_window(5, allowed_lateness_ms=3000)
    window.record(SUCCESS, T0_MS + 4500)  # head bucket: second 4
    assert window.record(ERROR, T0_MS + 1500) is True  # 3 s late: into bucket 1
    assert _counts(window.snapshot()) == (2, 1, 1, 200)
    window.advance(T0_MS + 6000)  # head second 6: buckets 0 and 1 are evicted
    assert _counts(window.snapshot()) == (1, 1, 0, 100)


def test_too_late_records_are_reported_not_counted() -> None:
    window = time_window(5, allowed_lateness_ms=3000)
    window.record(SUCCESS, T0_MS + 10_000)
    assert window.record(ERROR, T0_MS + 6_999) is False  # 3.001 s late
    window2 = time_window(5, allowed_lateness_ms=60_000)
    window2.record(SUCCESS, T0_MS + 10_000)
    assert window2.record(ERROR, T0_MS + 5_999) is False  # within lateness, bucket evicted
    assert window2.record(ERROR, T0_MS + 6_000) is True  # oldest bucket still in the window
    assert _counts(window.snapshot()) == (1, 1, 0, 100)
    assert _counts(window2.snapshot()) == (2, 1, 1, 200)


def test_cost_is_summed_exactly_and_evicted() -> None:
    window = count_window(2)
    for cost in ("0.10", "0.20", "0.30"):
        window.record(Outcome(failed=False, slow=False, cost_usd=Decimal(cost)), T0_MS)
    assert window.snapshot().total_cost_usd == Decimal("0.50")
    assert str(window.snapshot().total_cost_usd) == "0.5"  # no trailing zeros of the scale


@pytest.mark.parametrize("kind", ["count", "time"])
def test_cost_finer_than_a_nano_dollar_rescales_exactly(kind: str) -> None:
    window = count_window(3) if kind == "count" else time_window(5)
    for cost in ("0.000000001", "0.0000000000001", "1.5"):  # the second has 13 places
        window.record(Outcome(failed=False, slow=False, cost_usd=Decimal(cost)), T0_MS)
    assert window.snapshot().total_cost_usd == Decimal("1.5000000010001")
    assert window.cost is not None
    assert window.cost.scale == 13
    assert window.cost.exceeds(*Decimal("1.5000000010000").as_integer_ratio())
    assert not window.cost.exceeds(*Decimal("1.5000000010001").as_integer_ratio())


def test_bucket_sums_beyond_int64_widen_instead_of_wrapping() -> None:
    window = time_window(5)
    big = Outcome(failed=False, slow=False, cost_usd=Decimal(10**9))  # 1e18 nano-dollars
    for _ in range(20):  # 2e19 in one bucket: past int64
        window.record(big, T0_MS)
    assert window.snapshot().total_cost_usd == Decimal(2 * 10**10)
    window.advance(T0_MS + 10_000)
    assert window.snapshot().total_cost_usd == 0


def test_bucket_counters_widen_past_16_bits() -> None:
    window = TimeWindow(5)
    for _ in range(70_000):  # one bucket, past 65535
        window.add(True, True, Decimal(0), 0.0, T0_MS)
    s = window.snapshot()
    assert (s.total_calls, s.failed_calls, s.slow_failed_calls) == (70_000, 70_000, 70_000)
    window.advance(T0_MS + 5000)  # evicted exactly
    assert window.snapshot().total_calls == 0


@pytest.mark.parametrize("kind", ["count", "time"])
def test_untracked_channels_cost_nothing_and_read_zero(kind: str) -> None:
    window = CountWindow(5) if kind == "count" else TimeWindow(5)
    window.record(Outcome(failed=True, slow=True, duration_ms=100, cost_usd=Decimal(1)), T0_MS)
    s = window.snapshot()
    assert (s.total_calls, s.failed_calls, s.slow_calls, s.slow_failed_calls) == (1, 1, 1, 1)
    assert (s.total_duration_ms, s.total_cost_usd) == (0.0, Decimal(0))
    assert (window.cost, window.duration) == (None, None)


@pytest.mark.parametrize(
    ("make", "bad"),
    [
        (lambda: count_window(0), "0"),
        (lambda: time_window(0), "0"),
        (lambda: time_window(10, bucket_s=3), "3"),
        (lambda: time_window(10, allowed_lateness_ms=-1), "-1"),
    ],
)
def test_bad_window_config_names_the_value(make: object, bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        make()  # type: ignore[operator]


# --- properties ---

# Costs mostly in whole nano-dollars, sometimes finer (12 places) or huge (beyond int64 once
# summed in nano-dollars): the channel must stay exact through rescaling and widening.
costs = st.one_of(
    st.integers(0, 10_000).map(lambda c: Decimal(c) / 1000),
    st.integers(0, 10**6).map(lambda c: Decimal(c).scaleb(-12)),
    st.sampled_from([Decimal("999999999.999999999"), Decimal("1E+9")]),
)
outcomes = st.builds(
    Outcome,
    failed=st.booleans(),
    slow=st.booleans(),
    duration_ms=st.integers(0, 100_000).map(lambda us: us / 1000),
    cost_usd=costs,
)


def _recount(records: list[Outcome]) -> tuple[int, int, int, int, int, Decimal]:
    return (
        len(records),
        sum(o.failed for o in records),
        sum(o.slow for o in records),
        sum(o.slow and o.failed for o in records),
        sum(o.duration_us for o in records),
        sum((o.cost_usd for o in records), Decimal(0)),
    )


def _as_tuple(s: WindowSnapshot) -> tuple[int, int, int, int, int, Decimal]:
    duration_us = round(s.total_duration_ms * 1000)
    return (
        s.total_calls,
        s.failed_calls,
        s.slow_calls,
        s.slow_failed_calls,
        duration_us,
        s.total_cost_usd,
    )


@given(size=st.integers(1, 8), records=st.lists(outcomes, max_size=40))
def test_count_window_equals_recount_of_last_size(size: int, records: list[Outcome]) -> None:
    window = count_window(size)
    for i, outcome in enumerate(records):
        window.record(outcome, T0_MS)
        assert _as_tuple(window.snapshot()) == _recount(records[max(0, i + 1 - size) : i + 1])


@given(
    window_buckets=st.integers(1, 6),
    bucket_s=st.sampled_from([1, 2, 5]),
    lateness_ms=st.integers(0, 20_000),
    records=st.lists(st.tuples(st.integers(-3_000, 4_000), outcomes), max_size=40),
)
def test_time_window_equals_recount_of_records_inside(
    window_buckets: int,
    bucket_s: int,
    lateness_ms: int,
    records: list[tuple[int, Outcome]],
) -> None:
    window = time_window(window_buckets * bucket_s, bucket_s, allowed_lateness_ms=lateness_ms)
    accepted: list[tuple[int, Outcome]] = []
    now = T0_MS
    for step_ms, outcome in records:
        ts = now + step_ms  # negative steps make out-of-order records
        watermark = window.watermark_ms
        applied = window.record(outcome, ts)
        # The rule, restated: in order, or late by no more than the lateness into a live bucket.
        head_key = window.bucket_key_s(max(ts, watermark if watermark is not None else ts))
        live = window.bucket_key_s(ts) > head_key - window.window_s
        expected = watermark is None or ts >= watermark or (watermark - ts <= lateness_ms and live)
        assert applied == expected
        if applied:
            accepted.append((ts, outcome))
        now = max(now, ts)
        assert window.watermark_ms is not None
        head_key = window.bucket_key_s(window.watermark_ms)
        inside = [o for t, o in accepted if window.bucket_key_s(t) > head_key - window.window_s]
        assert _as_tuple(window.snapshot()) == _recount(inside)


@pytest.mark.parametrize("kind", ["count", "time"])
@given(records=st.lists(st.tuples(st.integers(0, 3_000), outcomes), max_size=30))
def test_copy_is_independent(kind: str, records: list[tuple[int, Outcome]]) -> None:
    window = count_window(3) if kind == "count" else time_window(5)
    now = T0_MS
    for step_ms, outcome in records:
        now += step_ms
        before = window.copy()
        assert before == window
        snapshot = window.snapshot()
        window.record(outcome, now)
        assert before.snapshot() == snapshot
        before.record(outcome, now)  # the copy moves the same way, on its own
        assert before.snapshot() == window.snapshot()
