"""SloWindows: the exact window span (W - W/60 .. W), late counts, change instants, memory,
and a hypothesis property (every window's sums equal a brute-force recount of the counts
whose event time lies in the documented span, whatever the order of adds and rolls)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.slo_windows import BUCKETS, NEVER, SloWindows

MINUTE_MS = 60_000
T0_MS = 1_795_305_600_000  # 2026-11-22T00:00:00Z


def sums(windows: SloWindows, index: int) -> tuple[int, int]:
    return windows.good(index), windows.valid(index)


def test_span_is_the_head_bucket_and_59_before_it() -> None:
    windows = SloWindows([5 * MINUTE_MS, 60 * MINUTE_MS], T0_MS)  # buckets of 5 s and 1 min
    assert windows.bucket_ms == (5_000, 60_000)
    assert windows.add(T0_MS, 9, 10)
    assert sums(windows, 0) == sums(windows, 1) == (9, 10)
    # 4:59.999 later the event is still in the 5 min window (its bucket is 59 buckets back).
    assert not windows.roll(T0_MS + 5 * MINUTE_MS - 1)
    assert sums(windows, 0) == (9, 10)
    assert windows.next_change_ms() == T0_MS + 5 * MINUTE_MS
    # At exactly 5:00 it leaves the 5 min window (and the caller is told so).
    assert windows.roll(T0_MS + 5 * MINUTE_MS)
    assert sums(windows, 0) == (0, 0)
    assert sums(windows, 1) == (9, 10)
    assert windows.next_change_ms() == T0_MS + 60 * MINUTE_MS
    # The span is between W - W/60 and W: an event 4:55 old is always counted.
    now = T0_MS + 7 * MINUTE_MS + 4_999
    windows.roll(now)
    start = windows.window_start_ms(0)
    assert 5 * MINUTE_MS - 5_000 <= now - start < 5 * MINUTE_MS
    assert windows.add(now - (5 * MINUTE_MS - 5_000), 1, 1)
    assert sums(windows, 0) == (1, 1)


def test_late_counts_are_refused_and_counted_nowhere() -> None:
    windows = SloWindows([60_000, 600_000], T0_MS)
    windows.roll(T0_MS + 20 * MINUTE_MS)
    oldest = windows.window_start_ms(1)
    assert windows.holds(oldest)
    assert not windows.holds(oldest - 1)
    assert not windows.add(oldest - 1, 5, 5)
    assert sums(windows, 0) == sums(windows, 1) == (0, 0)
    # Held by the long window only.
    assert windows.add(oldest, 1, 2)
    assert sums(windows, 0) == (0, 0)
    assert sums(windows, 1) == (1, 2)


def test_jump_over_everything_empties_all_windows() -> None:
    windows = SloWindows([60_000, 3_600_000], T0_MS)
    for second in range(100):
        windows.roll(T0_MS + second * 1000)
        windows.add(T0_MS + second * 1000, 1, 2)
    assert sums(windows, 1) == (100, 200)
    assert windows.roll(T0_MS + 10 * 3_600_000)
    assert sums(windows, 0) == sums(windows, 1) == (0, 0)
    assert windows.next_change_ms() == NEVER


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ConfigError):
        SloWindows([61], 0)
    with pytest.raises(ConfigError):
        SloWindows([60_000, 60_000], 0)
    with pytest.raises(ConfigError):
        SloWindows([], 0)
    windows = SloWindows([60_000], 0)
    with pytest.raises(ValueError, match="roll first"):
        windows.add(1, 1, 1)


def test_memory_is_two_arrays_of_60_slots_per_window() -> None:
    windows = SloWindows([300_000, 3_600_000, 1_800_000, 21_600_000], T0_MS)
    assert len(windows._good) == len(windows._valid) == 4 * BUCKETS


WINDOWS_MS = (60_000, 300_000, 600_000)

steps = st.lists(
    st.tuples(
        st.integers(0, 40_000),  # how far time moves first (0: stays)
        st.integers(0, 700_000),  # how old the count is
        st.integers(0, 5),  # good
        st.integers(0, 5),  # extra bad
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, start=st.integers(0, 10**7))
def test_sums_equal_a_recount_of_the_documented_span(
    steps: list[tuple[int, int, int, int]], start: int
) -> None:
    windows = SloWindows(WINDOWS_MS, start)
    now = start
    counted: list[tuple[int, int, int]] = []
    for move, age, good, bad in steps:
        now += move
        windows.roll(now)
        ts = now - age
        if windows.add(ts, good, good + bad):
            counted.append((ts, good, good + bad))
        else:
            assert all(ts < windows.window_start_ms(i) for i in range(len(WINDOWS_MS)))
        for i, window in enumerate(WINDOWS_MS):
            begin = windows.window_start_ms(i)
            assert window - window // BUCKETS <= now - begin < window
            expected_good = sum(g for t, g, _ in counted if begin <= t <= now)
            expected_valid = sum(v for t, _, v in counted if begin <= t <= now)
            assert sums(windows, i) == (expected_good, expected_valid)
        # next_change_ms: the first instant a counted event leaves some window.
        leaving = [
            (t // (w // BUCKETS) + BUCKETS) * (w // BUCKETS)
            for t, _, v in counted
            for i, w in enumerate(WINDOWS_MS)
            if v and windows.window_start_ms(i) <= t
        ]
        assert windows.next_change_ms() == min(leaving, default=NEVER)
