"""Spend anomalies: a tumbling window against the mean of the previous ones (fires once,
resolves once, no verdict without a baseline, empty windows count as 0, exact factor), and
rapid consumption of a budget (10 % in 15 minutes, the seeds' rule); hypothesis checks both
against brute-force models."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.spend_anomaly import (
    AnomalyEnded,
    AnomalyStarted,
    RapidConsumption,
    RapidConsumptionEnded,
    RapidConsumptionStarted,
    SpendRateAnomaly,
    SpendRateSnapshot,
)

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of an hour and of 4 hours
HOUR_MS = 3_600_000
USD = 10**9  # nano-dollars


def _feed(detector: SpendRateAnomaly, spends: list[int], first: int = 0) -> list[object]:
    """Spend `spends[i]` in window `first + i` (at its middle, one record), and return every
    transition, including those of the clock event closing the last window."""
    out: list[object] = []
    w = detector.window_ms
    for i, spend in enumerate(spends):
        out += detector.add(T0_MS + (first + i) * w + w // 2, spend)
    out += detector.advance(T0_MS + (first + len(spends)) * w)
    return out


# --- SpendRateAnomaly ---


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_ms": 0}, "window_ms must be an integer >= 1, not 0"),
        ({"window_ms": HOUR_MS, "baseline_windows": 0}, "baseline_windows must be an integer"),
        ({"window_ms": HOUR_MS, "factor": 0}, "factor must be a finite number > 0, not 0"),
        ({"window_ms": HOUR_MS, "factor": float("inf")}, "factor must be a finite number > 0"),
        ({"window_ms": HOUR_MS, "factor": "2"}, "factor must be a number, not '2'"),
        ({"window_ms": HOUR_MS, "minimum_baseline_nanos": -1}, "minimum_baseline_nanos must"),
    ],
)
def test_anomaly_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SpendRateAnomaly(**kwargs)  # type: ignore[arg-type]


def test_negative_spend_is_a_bug() -> None:
    with pytest.raises(ValueError, match="spend must be >= 0"):
        SpendRateAnomaly(HOUR_MS).add(T0_MS, -1)
    with pytest.raises(ValueError, match="spend must be >= 0"):
        RapidConsumption(USD).add(T0_MS, -1)


def test_no_anomaly_without_a_baseline() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=6)
    # A 100x spike in the fifth window: only 4 windows closed before it, so no baseline.
    assert _feed(detector, [USD, USD, USD, USD, 100 * USD]) == []
    assert detector.current().baseline_nanos is None
    assert not detector.anomalous


def test_fires_once_and_resolves_once() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=6, factor=2.0)
    assert _feed(detector, [100 * USD] * 6) == []
    # Window 6: 300 > 2 x 100.
    assert _feed(detector, [300 * USD], first=6) == [
        AnomalyStarted(T0_MS + 6 * HOUR_MS, 300 * USD, 100 * USD)
    ]
    assert detector.anomalous
    # Window 7: 300 against mean(100 x 5, 300) = 133.33: still anomalous, nothing new.
    assert _feed(detector, [300 * USD], first=7) == []
    # Window 8: 100 is within 2 x mean(100 x 4, 300, 300): resolved, once.
    baseline = (4 * 100 + 2 * 300) * USD // 6
    assert _feed(detector, [100 * USD], first=8) == [
        AnomalyEnded(T0_MS + 8 * HOUR_MS, 100 * USD, baseline)
    ]
    assert _feed(detector, [100 * USD], first=9) == []


def test_exactly_factor_times_baseline_is_not_anomalous() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=3, factor=2.0)
    assert _feed(detector, [10, 10, 10, 20]) == []  # 20 = 2 x 10: not above
    # The mean is not rounded: 2 x mean(10, 10, 20) = 26.67, so 26 is within and 27 above
    # (the reported baseline is the mean rounded down, 13).
    assert _feed(SpendRateAnomaly(HOUR_MS, 3), [10, 10, 20, 26]) == []
    assert _feed(SpendRateAnomaly(HOUR_MS, 3), [10, 10, 20, 27]) == [
        AnomalyStarted(T0_MS + 3 * HOUR_MS, 27, 13)
    ]


def test_factor_is_the_decimal_it_prints_as() -> None:
    # In floats 1.1 * 10 is 11.000000000000002, which would make 11 not anomalous by luck and
    # 11.000000000000001 unrepresentable; here the test is exactly spend > 11.
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=1, factor=1.1)
    assert _feed(detector, [10, 11]) == []
    assert detector.current().threshold_nanos == 12  # 1.1 x 11 = 12.1
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=1, factor=Decimal("1.1"))
    assert _feed(detector, [10, 12]) == [AnomalyStarted(T0_MS + HOUR_MS, 12, 10)]


def test_empty_windows_count_as_zero_in_the_baseline() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=6)
    # Spend only in windows 0, 2 and 4 (1 3 5 have no events at all): mean = 3 x 120 / 6 = 60.
    for k in (0, 2, 4):
        assert detector.add(T0_MS + k * HOUR_MS, 120) == ()
    assert detector.advance(T0_MS + 6 * HOUR_MS) == ()
    snapshot = detector.current()
    assert (snapshot.baseline_nanos, snapshot.threshold_nanos) == (60, 120)
    assert detector.add(T0_MS + 6 * HOUR_MS, 120) == ()
    assert detector.advance(T0_MS + 7 * HOUR_MS) == ()  # 120 = 2 x 60: not above
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=6)
    for k in (0, 2, 4):
        detector.add(T0_MS + k * HOUR_MS, 120)
    detector.add(T0_MS + 6 * HOUR_MS, 121)
    assert detector.advance(T0_MS + 7 * HOUR_MS) == (AnomalyStarted(T0_MS + 6 * HOUR_MS, 121, 60),)


def test_a_gap_in_traffic_ends_the_anomaly_at_the_first_empty_window() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=2)
    _feed(detector, [10, 10])
    # One call closes window 2 (anomalous) and the empty windows 3 and 4 in one step.
    detector.add(T0_MS + 2 * HOUR_MS, 50)
    assert detector.add(T0_MS + 5 * HOUR_MS, 1) == (
        AnomalyStarted(T0_MS + 2 * HOUR_MS, 50, 10),
        AnomalyEnded(T0_MS + 3 * HOUR_MS, 0, 30),
    )
    assert not detector.anomalous
    # The baseline now holds windows 3 and 4 (both 0).
    assert detector.baseline_total() == 0
    assert detector.current().ratio is None  # a zero baseline has no ratio


def test_a_jump_longer_than_the_baseline_fills_it_with_zeros() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=3)
    _feed(detector, [7, 7, 7])
    assert detector.advance(T0_MS + 1000 * HOUR_MS) == ()
    assert detector.baseline_total() == 0
    assert detector.window_index == (T0_MS + 1000 * HOUR_MS) // HOUR_MS


def test_minimum_baseline_suppresses_noise() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=2, minimum_baseline_nanos=USD)
    # A few cents to a few dimes is a 10x jump, but the baseline is under $1.
    assert _feed(detector, [USD // 100, USD // 100, USD // 10]) == []
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=2, minimum_baseline_nanos=USD)
    assert _feed(detector, [USD, USD, 3 * USD]) == [
        AnomalyStarted(T0_MS + 2 * HOUR_MS, 3 * USD, USD)
    ]


def test_late_records_are_tallied_not_counted() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=1)
    detector.add(T0_MS + HOUR_MS, 5)
    assert detector.accepts(T0_MS + HOUR_MS)
    assert not detector.accepts(T0_MS + HOUR_MS - 1)
    assert detector.add(T0_MS + 10, 7) == ()  # window 0 closed (empty) when window 1 began
    assert (detector.spend_nanos, detector.late_events, detector.late_nanos) == (5, 1, 7)
    # Out of order within the window in progress is fine.
    detector.add(T0_MS + HOUR_MS + 100, 1)
    detector.add(T0_MS + HOUR_MS + 50, 1)
    assert detector.spend_nanos == 7


def test_current_reports_the_window_in_progress() -> None:
    detector = SpendRateAnomaly(4 * HOUR_MS)  # the seeds: 4 h windows, factor 2.0, 6 windows
    assert detector.current() == SpendRateSnapshot(None, 0, None, None, None, False)
    _feed(detector, [60 * USD] * 6)
    detector.add(T0_MS + 24 * HOUR_MS + 1, 90 * USD)
    assert detector.current() == SpendRateSnapshot(
        window_start_ms=T0_MS + 24 * HOUR_MS,
        spend_nanos=90 * USD,
        baseline_nanos=60 * USD,
        ratio=1.5,
        threshold_nanos=120 * USD,
        anomalous=False,
    )


def test_anomaly_copy_is_independent() -> None:
    detector = SpendRateAnomaly(HOUR_MS, baseline_windows=2)
    _feed(detector, [10, 10])
    clone = detector.copy()
    assert _feed(clone, [50], first=2) == [AnomalyStarted(T0_MS + 2 * HOUR_MS, 50, 10)]
    assert not detector.anomalous
    assert detector.baseline_total() == 20
    assert clone.baseline_total() == 60
    assert _feed(detector, [50], first=2) == [AnomalyStarted(T0_MS + 2 * HOUR_MS, 50, 10)]


def _expected_transitions(
    window_ms: int, n: int, factor: int, minimum: int, events: list[tuple[int, int]], end: int
) -> list[tuple[str, int, int, int]]:
    """Brute force for in-order events: per-window sums from the first event's window to the
    window before `end`'s, each judged against the mean of the n before it."""
    if not events:
        return []
    first = events[0][0] // window_ms
    sums = [0] * (end // window_ms - first)
    for ts, nanos in events:
        if ts // window_ms - first < len(sums):
            sums[ts // window_ms - first] += nanos
    out, was = [], False
    for k, spend in enumerate(sums):
        if k < n:
            continue
        total = sum(sums[k - n : k])
        now = total >= minimum * n and spend * n > factor * total
        if now != was:
            out.append(("start" if now else "end", (first + k) * window_ms, spend, total // n))
        was = now
    return out


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 4),
    factor=st.integers(1, 3),
    minimum=st.integers(0, 3),
    steps=st.lists(st.tuples(st.integers(0, 2_500), st.integers(0, 10)), max_size=40),
)
def test_anomaly_matches_brute_force(
    n: int, factor: int, minimum: int, steps: list[tuple[int, int]]
) -> None:
    window_ms = 1_000
    detector = SpendRateAnomaly(window_ms, n, factor, minimum)
    events: list[tuple[int, int]] = []
    got: list[AnomalyStarted | AnomalyEnded] = []
    ts = T0_MS
    for gap, nanos in steps:
        ts += gap
        events.append((ts, nanos))
        got += detector.add(ts, nanos)
    end = ts + 3 * window_ms  # close the last window and a few empty ones
    got += detector.advance(end)
    expected = _expected_transitions(window_ms, n, factor, minimum, events, end)
    assert [
        (
            "start" if isinstance(t, AnomalyStarted) else "end",
            t.window_start_ms,
            t.spend_nanos,
            t.baseline_nanos,
        )
        for t in got
    ] == expected
    # Fire once, resolve once: strictly alternating, starting with a start.
    assert all(isinstance(t, AnomalyStarted) == (i % 2 == 0) for i, t in enumerate(got))


# --- RapidConsumption ---

MINUTE_MS = 60_000


def test_rapid_consumption_config_errors() -> None:
    with pytest.raises(ConfigError, match="limit_nanos must be an integer >= 0, not -1"):
        RapidConsumption(-1)
    with pytest.raises(ConfigError, match="fraction must be a finite number > 0, not 0"):
        RapidConsumption(USD, fraction=0)
    with pytest.raises(ConfigError, match=r"multiple of bucket_ms \(7000\)"):
        RapidConsumption(USD, window_ms=900_000, bucket_ms=7_000)


def test_ten_percent_in_fifteen_minutes() -> None:
    rapid = RapidConsumption(1000 * USD)  # a $1000 budget: 10 % is $100 in 15 minutes
    assert rapid.threshold_nanos == 100 * USD
    assert rapid.add(T0_MS, 40 * USD) == ()
    assert rapid.add(T0_MS + 7 * MINUTE_MS, 40 * USD) == ()
    assert rapid.add(T0_MS + 14 * MINUTE_MS, 20 * USD) == ()  # exactly $100: not above
    assert rapid.add(T0_MS + 14 * MINUTE_MS + 1, 1) == (
        RapidConsumptionStarted(T0_MS + 14 * MINUTE_MS + 1, 100 * USD + 1, 100 * USD),
    )
    # Stays active without repeating.
    assert rapid.add(T0_MS + 14 * MINUTE_MS + 2, 5 * USD) == ()
    assert rapid.active
    # The first minute's $40 leaves at its slice end - 1 ms + 15 min; then $65 remain.
    assert rapid.ends_at() == T0_MS + MINUTE_MS - 1 + 15 * MINUTE_MS
    assert rapid.advance(T0_MS + 16 * MINUTE_MS - 2) == ()
    assert rapid.advance(T0_MS + 16 * MINUTE_MS - 1) == (
        RapidConsumptionEnded(T0_MS + 16 * MINUTE_MS - 1, 65 * USD + 1, 100 * USD),
    )
    assert rapid.ends_at() is None
    assert rapid.advance(T0_MS + 60 * MINUTE_MS) == ()
    assert rapid.spend_nanos() == 0


def test_spend_spread_over_more_than_the_window_is_not_rapid() -> None:
    rapid = RapidConsumption(1000 * USD)
    assert rapid.add(T0_MS, 60 * USD) == ()
    # 16 minutes later the first $60 has left the window: $50 + nothing else.
    assert rapid.add(T0_MS + 16 * MINUTE_MS, 50 * USD) == ()
    assert rapid.spend_nanos() == 50 * USD


def test_rapid_consumption_late_records() -> None:
    rapid = RapidConsumption(1000 * USD)
    rapid.add(T0_MS + 20 * MINUTE_MS, USD)
    assert rapid.accepts(T0_MS + 6 * MINUTE_MS)
    assert not rapid.accepts(T0_MS + 5 * MINUTE_MS - 1)
    # Inside the window: counted, and it can start the condition (seen at the newest time).
    assert rapid.add(T0_MS + 6 * MINUTE_MS, 100 * USD) == (
        RapidConsumptionStarted(T0_MS + 20 * MINUTE_MS, 101 * USD, 100 * USD),
    )
    assert rapid.add(T0_MS + MINUTE_MS, 500 * USD) == ()  # outside: tallied only
    assert (rapid.spend_nanos(), rapid.late_events, rapid.late_nanos) == (101 * USD, 1, 500 * USD)


def test_rapid_consumption_copy_is_independent() -> None:
    rapid = RapidConsumption(100, fraction=0.5)
    rapid.add(T0_MS, 50)
    clone = rapid.copy()
    assert clone.add(T0_MS, 1) == (RapidConsumptionStarted(T0_MS, 51, 50),)
    assert (rapid.active, rapid.spend_nanos()) == (False, 50)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(0, 200),
    steps=st.lists(st.tuples(st.integers(-3_000, 5_000), st.integers(0, 10)), max_size=50),
)
def test_rapid_consumption_alternates_and_tracks_the_threshold(
    limit: int, steps: list[tuple[int, int]]
) -> None:
    rapid = RapidConsumption(limit, fraction=0.25, window_ms=10_000, bucket_ms=1_000)
    transitions: list[RapidConsumptionStarted | RapidConsumptionEnded] = []
    ts = T0_MS
    for delta, nanos in steps:
        ts += delta  # negative deltas are out-of-order records
        transitions += rapid.add(ts, nanos)
        assert rapid.active == (rapid.spend_nanos() > limit // 4)
    assert all(
        isinstance(t, RapidConsumptionStarted) == (i % 2 == 0) for i, t in enumerate(transitions)
    )
    ends_at = rapid.ends_at()
    if ends_at is not None:
        assert rapid.advance(ends_at - 1) == ()
        assert [type(t) for t in rapid.advance(ends_at)] == [RapidConsumptionEnded]
