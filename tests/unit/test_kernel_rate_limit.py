"""Sliding-window rate limits: window edges at 1 ms and 1 s slices, out-of-order records, the
fixed-window boundary exploit, when capacity returns, and hypothesis properties (usage against
a brute-force recount of the exact window, for any interleaving of records and clock events)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.rate_limit import SliceRing, SlidingRateLimit

# A minute boundary: 2026-01-01T00:00:00Z.
T0_MS = 1_767_225_600_000
MINUTE_MS = 60_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit must be an integer >= 0, not -1"),
        ({"limit": True}, "limit must be an integer >= 0, not True"),
        ({"limit": 10, "window_ms": 0}, "window_ms must be an integer >= 1, not 0"),
        ({"limit": 10, "buckets": 0}, "buckets must be an integer >= 1, not 0"),
        ({"limit": 10, "window_ms": 1000, "buckets": 7}, "multiple of buckets (7)"),
    ],
)
def test_invalid_config_names_the_value(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SlidingRateLimit(**kwargs)


def test_negative_amount_is_a_bug() -> None:
    with pytest.raises(ValueError, match="amount must be >= 0"):
        SlidingRateLimit(10).record(T0_MS, -1)


def test_empty_limiter() -> None:
    limiter = SlidingRateLimit(10)
    assert (limiter.used(), limiter.remaining(), limiter.exceeded()) == (0, 10, False)
    assert limiter.capacity_returns_at() is None
    assert limiter.watermark_ms is None
    assert limiter.slice_ms == 1000


def test_usage_remaining_and_exceeded() -> None:
    limiter = SlidingRateLimit(limit=3)
    for i in range(3):
        assert limiter.record(T0_MS + i)
    assert (limiter.used(), limiter.remaining(), limiter.exceeded()) == (3, 0, False)
    assert limiter.record(T0_MS + 3)
    # Over the limit: remaining stays at 0, never negative.
    assert (limiter.used(), limiter.remaining(), limiter.exceeded()) == (4, 0, True)


def test_tokens_per_minute_counts_amounts() -> None:
    limiter = SlidingRateLimit(limit=90_000)  # the seeds' tokens_per_minute
    limiter.record(T0_MS, 50_000)
    limiter.record(T0_MS + 30_000, 40_000)
    assert (limiter.used(), limiter.exceeded()) == (90_000, False)
    limiter.record(T0_MS + 30_001, 1)
    assert limiter.exceeded()
    # Zero tokens moves time but counts nothing.
    assert limiter.record(T0_MS + 61_000, 0)
    assert limiter.used() == 40_001


# --- window edges ---


def test_one_ms_slices_are_exact_at_the_edge() -> None:
    limiter = SlidingRateLimit(limit=10, window_ms=MINUTE_MS, buckets=MINUTE_MS)
    limiter.record(T0_MS + 5)
    limiter.advance(T0_MS + 5 + MINUTE_MS - 1)  # 59 999 ms old: inside (t - W, t]
    assert limiter.used() == 1
    limiter.advance(T0_MS + 5 + MINUTE_MS)  # exactly window_ms old: out
    assert limiter.used() == 0


def test_event_at_a_slice_end_falls_out_exactly_window_ms_later() -> None:
    limiter = SlidingRateLimit(limit=10)  # 60 slices of 1 s
    limiter.record(T0_MS + 999)  # the newest millisecond of its slice
    limiter.advance(T0_MS + 999 + MINUTE_MS - 1)
    assert limiter.used() == 1
    limiter.advance(T0_MS + 999 + MINUTE_MS)
    assert limiter.used() == 0


def test_event_at_a_slice_start_stays_until_its_slice_leaves() -> None:
    # The resolution cost: the slice is kept whole while its newest millisecond is in the
    # window, so an event at the slice start is counted up to 999 ms past window_ms.
    limiter = SlidingRateLimit(limit=10)
    limiter.record(T0_MS)
    limiter.advance(T0_MS + MINUTE_MS)  # exactly window_ms old, still counted
    assert limiter.used() == 1
    limiter.advance(T0_MS + MINUTE_MS + 998)
    assert limiter.used() == 1
    limiter.advance(T0_MS + MINUTE_MS + 999)  # slice [T0, T0 + 1 s) is now entirely old
    assert limiter.used() == 0


def test_a_long_gap_clears_everything() -> None:
    limiter = SlidingRateLimit(limit=10)
    for i in range(0, MINUTE_MS, 500):
        limiter.record(T0_MS + i)
    assert limiter.used() == 120
    limiter.advance(T0_MS + 10 * MINUTE_MS)
    assert limiter.used() == 0
    assert limiter.record(T0_MS + 10 * MINUTE_MS)
    assert limiter.used() == 1


# --- out of order ---


def test_out_of_order_inside_the_window_goes_to_its_own_slice() -> None:
    limiter = SlidingRateLimit(limit=10)
    limiter.record(T0_MS + 30_000)
    assert limiter.record(T0_MS + 1_000)  # late, but its slice is still in the window
    assert limiter.used() == 2
    assert limiter.watermark_ms == T0_MS + 30_000  # late records do not move time back
    # Its own slice leaves first: at its slice end - 1 + window, not with the newer record.
    limiter.advance(T0_MS + 1_999 + MINUTE_MS)
    assert limiter.used() == 1
    limiter.advance(T0_MS + 30_999 + MINUTE_MS)
    assert limiter.used() == 0


def test_out_of_order_outside_the_window_is_refused() -> None:
    limiter = SlidingRateLimit(limit=10)
    limiter.record(T0_MS + MINUTE_MS + 1_500)
    before = (limiter.used(), limiter.watermark_ms)
    assert not limiter.record(T0_MS + 499)  # slice [T0, T0 + 1 s) left at T0 + 60 999
    assert not limiter.record(T0_MS + 999)
    assert (limiter.used(), limiter.watermark_ms) == before
    assert limiter.record(T0_MS + 1_000)  # the next slice is still in


# --- the fixed-window exploit ---


def test_boundary_burst_is_exceeded() -> None:
    # A fixed one-minute window resets at T0 + 60 s and would allow both bursts: 2 x limit in
    # two seconds. The sliding window holds both.
    limit = 500  # the seeds' requests_per_minute
    limiter = SlidingRateLimit(limit)
    end_of_minute = T0_MS + MINUTE_MS - 1_000
    for i in range(limit):
        limiter.record(end_of_minute + i * 2)
    assert not limiter.exceeded()
    for i in range(limit):
        limiter.record(T0_MS + MINUTE_MS + i * 2)
    assert limiter.used() == 2 * limit
    assert limiter.exceeded()
    # The first burst (slice T0 + 59 s) leaves at T0 + 59 s + 1 s - 1 + 60 s.
    assert limiter.capacity_returns_at() == T0_MS + 2 * MINUTE_MS - 1


def test_burst_allowance_is_the_callers_multiplier() -> None:
    base, allowance = 500, 1.2  # bud.vendor.openai
    limiter = SlidingRateLimit(limit=int(base * allowance))
    for i in range(600):
        limiter.record(T0_MS + i)
    assert not limiter.exceeded()
    limiter.record(T0_MS + 600)
    assert limiter.exceeded()


# --- capacity_returns_at ---


def test_capacity_returns_at_moves_as_slices_expire() -> None:
    limiter = SlidingRateLimit(limit=4)
    limiter.record(T0_MS + 100, 3)  # slice 0, leaves at T0 + 999 + 60 000
    limiter.record(T0_MS + 10_500, 2)  # slice 10, leaves at T0 + 10 999 + 60 000
    limiter.record(T0_MS + 20_000, 2)  # slice 20, leaves at T0 + 20 999 + 60 000
    assert limiter.used() == 7
    # Dropping slice 0 leaves 4 <= 4.
    assert limiter.capacity_returns_at() == T0_MS + 60_999

    limiter.record(T0_MS + 30_000, 1)  # 8: now slice 10 must go too (8 - 3 - 2 = 3)
    assert limiter.capacity_returns_at() == T0_MS + 70_999

    limiter.advance(T0_MS + 60_998)  # one millisecond early: nothing has left yet
    assert (limiter.used(), limiter.capacity_returns_at()) == (8, T0_MS + 70_999)
    limiter.advance(T0_MS + 60_999)  # slice 0 left; 5 > 4 still
    assert (limiter.used(), limiter.capacity_returns_at()) == (5, T0_MS + 70_999)
    limiter.advance(T0_MS + 70_998)
    assert limiter.exceeded()
    limiter.advance(T0_MS + 70_999)
    assert (limiter.used(), limiter.exceeded(), limiter.capacity_returns_at()) == (3, False, None)


def test_copy_is_independent() -> None:
    limiter = SlidingRateLimit(limit=1)
    limiter.record(T0_MS)
    clone = limiter.copy()
    clone.record(T0_MS + 1)
    clone.advance(T0_MS + 5 * MINUTE_MS)
    assert (limiter.used(), limiter.watermark_ms) == (1, T0_MS)
    assert (clone.used(), clone.watermark_ms) == (0, T0_MS + 5 * MINUTE_MS)
    assert (clone.limit, clone.window_ms, clone.buckets) == (1, MINUTE_MS, 60)


def test_amounts_beyond_64_bits_stay_exact() -> None:
    ring = SliceRing(window_ms=1000, slice_ms=100)
    ring.add(0, 2**62)
    ring.add(1, 2**62)  # the slice overflows int64; the ring widens instead of wrapping
    ring.add(150, 2**70)
    assert ring.total == 2**63 + 2**70
    ring.advance(1099)
    assert ring.total == 2**70


def test_slice_ring_config_errors() -> None:
    with pytest.raises(ConfigError, match="slice_ms must be an integer >= 1, not 0"):
        SliceRing(1000, 0)
    with pytest.raises(ConfigError, match=r"multiple of slice_ms \(300\)"):
        SliceRing(1000, 300)


# --- properties ---

# Operations: ("record", offset_ms, amount) or ("advance", offset_ms). Offsets span several
# windows so that records arrive early, late inside the window and late outside it.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(-1_000, 30_000), st.integers(0, 5)),
        st.tuples(st.just("advance"), st.integers(-1_000, 30_000), st.just(0)),
    ),
    max_size=60,
)
_shapes = st.sampled_from([(10_000, 10), (10_000, 1), (10_000, 10_000), (9_000, 3), (60, 60)])


@settings(max_examples=300, deadline=None)
@given(shape=_shapes, ops=_ops, limit=st.integers(0, 20))
def test_usage_is_bounded_by_the_exact_window(
    shape: tuple[int, int], ops: list[tuple[str, int, int]], limit: int
) -> None:
    window_ms, buckets = shape
    slice_ms = window_ms // buckets
    limiter = SlidingRateLimit(limit, window_ms, buckets)
    accepted: list[tuple[int, int]] = []
    now: int | None = None
    for op, offset, amount in ops:
        ts = T0_MS + offset
        if op == "record":
            ok = limiter.record(ts, amount)
            if ok:
                accepted.append((ts, amount))
            else:  # refused only when already outside the exact window
                assert now is not None
                assert ts <= now - window_ms
        else:
            limiter.advance(ts)
        now = ts if now is None else max(now, ts)
        assert limiter.watermark_ms == now

        def within(oldest_excluded: int, t: int = now) -> int:
            return sum(a for e, a in accepted if oldest_excluded < e <= t)

        used = limiter.used()
        # Never an undercount of the exact window; at most slice_ms - 1 ms of extra history.
        assert within(now - window_ms) <= used <= within(now - window_ms - slice_ms + 1)
        # The brief's looser statement of the same.
        assert within(now - window_ms + slice_ms) <= used <= within(now - window_ms - slice_ms)
        # And exactly the defined slices: those whose newest millisecond is in the window.
        oldest = (now - window_ms + 1) // slice_ms
        assert used == sum(a for e, a in accepted if oldest <= e // slice_ms and e <= now)
        assert limiter.exceeded() == (used > limit)
        assert limiter.remaining() == max(0, limit - used)


@settings(max_examples=200, deadline=None)
@given(shape=_shapes, ops=_ops, limit=st.integers(0, 20))
def test_capacity_returns_at_is_the_earliest_such_time(
    shape: tuple[int, int], ops: list[tuple[str, int, int]], limit: int
) -> None:
    limiter = SlidingRateLimit(limit, *shape)
    for op, offset, amount in ops:
        if op == "record":
            limiter.record(T0_MS + offset, amount)
        else:
            limiter.advance(T0_MS + offset)
    returns_at = limiter.capacity_returns_at()
    if returns_at is None:
        assert not limiter.exceeded()
        return
    watermark = limiter.watermark_ms
    assert watermark is not None
    assert returns_at > watermark
    later = limiter.copy()
    later.advance(returns_at)
    assert not later.exceeded()
    earlier = limiter.copy()
    earlier.advance(returns_at - 1)
    assert earlier.exceeded()
