"""Rolling sums and exact money: narrative event-time tests, late adds, the resolution bound,
exact nano-dollar sums, and hypothesis properties (totals equal a brute-force sum over the
accepted events whose bucket is inside the window, whatever the order of adds)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.rolling_sum import MAX_BUCKETS, RollingSum, from_nanos, to_nanos

MINUTE_MS = 60_000
T0_MS = 1_795_305_600_000  # 2026-11-22T00:00:00Z, a whole number of minutes


def test_window_counts_events_and_evicts_whole_buckets() -> None:
    rolling = RollingSum(window_ms=5 * MINUTE_MS, bucket_ms=MINUTE_MS)
    assert rolling.total() == (0, 0)
    assert rolling.add(T0_MS, 100, 10)  # bucket 0
    assert rolling.add(T0_MS + 2 * MINUTE_MS, 200, 20)  # bucket 2
    assert rolling.total() == (300, 30)
    # At 5:00 the window is buckets 0..5 (five whole buckets plus the head): still all.
    rolling.advance(T0_MS + 5 * MINUTE_MS)
    assert rolling.total() == (300, 30)
    assert rolling.window_start_ms == T0_MS
    # At 6:00 bucket 0 leaves; subtract-on-evict.
    rolling.advance(T0_MS + 6 * MINUTE_MS)
    assert rolling.total() == (200, 20)
    # A jump of more than the window empties it at once.
    rolling.advance(T0_MS + 60 * MINUTE_MS)
    assert rolling.total() == (0, 0)
    assert rolling.watermark_ms == T0_MS + 60 * MINUTE_MS


def test_late_adds_inside_the_window_count_and_older_ones_are_rejected() -> None:
    rolling = RollingSum(window_ms=5 * MINUTE_MS, bucket_ms=MINUTE_MS)
    rolling.advance(T0_MS + 10 * MINUTE_MS + 30_000)  # head bucket 10; window from 5:00
    assert rolling.in_window(T0_MS + 5 * MINUTE_MS)
    assert rolling.add(T0_MS + 5 * MINUTE_MS, 7, 1)  # late, but its bucket is in the window
    assert not rolling.in_window(T0_MS + 5 * MINUTE_MS - 1)
    assert not rolling.add(T0_MS + 5 * MINUTE_MS - 1, 1_000, 1_000)  # too late: audited
    assert rolling.total() == (7, 1)  # the rejected add changed nothing
    assert rolling.watermark_ms == T0_MS + 10 * MINUTE_MS + 30_000


def test_resolution_bound_is_at_most_one_bucket_of_older_events() -> None:
    rolling = RollingSum(window_ms=10 * MINUTE_MS, bucket_ms=MINUTE_MS)
    rolling.add(T0_MS, 1, 0)
    # 10 min 59.999 s later the event is older than the window but shares the oldest bucket.
    now = T0_MS + 11 * MINUTE_MS - 1
    rolling.advance(now)
    assert rolling.total() == (1, 0)
    assert now - T0_MS - rolling.window_ms < rolling.bucket_ms
    rolling.advance(now + 1)
    assert rolling.total() == (0, 0)


def test_amounts_may_be_negative_credits() -> None:
    rolling = RollingSum(window_ms=MINUTE_MS, bucket_ms=1000)
    rolling.add(T0_MS, to_nanos(Decimal("2.50")), 100)
    rolling.add(T0_MS + 1, to_nanos(Decimal("-0.75")), 0)  # a billing adjustment
    assert from_nanos(rolling.total()[0]) == Decimal("1.75")


def test_a_million_ten_thousandths_of_a_dollar_sum_to_exactly_100() -> None:
    rolling = RollingSum(window_ms=30 * 24 * 3_600_000, bucket_ms=3_600_000)
    charge = to_nanos(Decimal("0.0001"))
    add = rolling.add
    for i in range(1_000_000):
        add(T0_MS + i, charge, 1)
    nanos, tokens = rolling.total()
    assert from_nanos(nanos) == Decimal(100)
    assert str(from_nanos(nanos)) == "100"
    assert tokens == 1_000_000


def test_copy_is_independent() -> None:
    rolling = RollingSum(window_ms=5 * MINUTE_MS, bucket_ms=MINUTE_MS)
    rolling.add(T0_MS, 5, 5)
    clone = rolling.copy()
    clone.add(T0_MS + 1, 1, 1)
    clone.advance(T0_MS + 60 * MINUTE_MS)
    assert rolling.total() == (5, 5)
    assert rolling.watermark_ms == T0_MS
    assert clone.total() == (0, 0)


@pytest.mark.parametrize(
    ("window_ms", "bucket_ms", "message"),
    [
        (0, 1, "window_ms"),
        (60_000, 0, "bucket_ms"),
        (60_000, 7_000, "multiple"),
        (True, 1, "window_ms"),
        (30 * 24 * 3_600_000, 60_000, "43200 buckets"),
    ],
)
def test_invalid_windows_raise_config_error(window_ms: int, bucket_ms: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RollingSum(window_ms, bucket_ms)


def test_bucket_cap() -> None:
    assert RollingSum(MAX_BUCKETS * 1000, 1000).buckets == MAX_BUCKETS
    with pytest.raises(ConfigError, match="bucket_ms >= 1001"):
        RollingSum((MAX_BUCKETS + 1) * 1000, 1000)


# --- money ---


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [
        ("0", 0),
        ("-0", 0),
        ("0.000000001", 1),
        ("0.0001", 100_000),
        ("1.10000000000000", 1_100_000_000),  # trailing zeros beyond 9 places are exact
        ("1E+3", 1_000 * 10**9),
        ("-2.5", -2_500_000_000),
        ("1000000000000000000.123456789", 10**27 + 123_456_789),  # past 28 digits, exact
    ],
)
def test_to_nanos_is_exact(amount: str, nanos: int) -> None:
    assert to_nanos(Decimal(amount)) == nanos
    assert from_nanos(nanos) == Decimal(amount)


@pytest.mark.parametrize("amount", ["0.0000000001", "1.0000000005", "NaN", "Infinity", "1E+99"])
def test_to_nanos_refuses_what_it_cannot_represent(amount: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        to_nanos(Decimal(amount))


def test_from_nanos_has_no_trailing_zeros() -> None:
    assert str(from_nanos(1)) == "1E-9"
    assert str(from_nanos(1_500_000_000)) == "1.5"
    assert str(from_nanos(-10 * 10**9)) == "-10"  # whole dollars stay plain integers
    assert from_nanos(-10 * 10**9) == Decimal(-10)


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_nanos_round_trip(nanos: int) -> None:
    assert to_nanos(from_nanos(nanos)) == nanos


# --- properties ---

EVENTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40_000),  # ts offset, out of order
        st.integers(min_value=-(10**12), max_value=10**12),
        st.integers(min_value=0, max_value=10**6),
        st.booleans(),  # True: an advance (clock event) instead of an add
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.sampled_from([1, 7, 250, 1000]),
    EVENTS,
)
def test_totals_equal_a_brute_force_sum(
    buckets: int, bucket_ms: int, events: list[tuple[int, int, int, bool]]
) -> None:
    rolling = RollingSum(buckets * bucket_ms, bucket_ms)
    accepted: list[tuple[int, int, int]] = []
    watermark: int | None = None
    for offset, nanos, tokens, is_advance in events:
        ts = T0_MS + offset
        if is_advance:
            rolling.advance(ts)
        else:
            head = None if watermark is None else max(watermark, ts) // bucket_ms
            inside = head is None or ts // bucket_ms >= head - buckets
            assert rolling.add(ts, nanos, tokens) is inside
            if inside:
                accepted.append((ts, nanos, tokens))
        watermark = ts if watermark is None else max(watermark, ts)
        head = watermark // bucket_ms
        counted = [e for e in accepted if e[0] // bucket_ms >= head - buckets]
        assert rolling.total() == (sum(e[1] for e in counted), sum(e[2] for e in counted))
        # The bound: everything within window_ms counts, nothing a bucket older than that.
        assert all(watermark - e[0] < rolling.window_ms + bucket_ms for e in counted)
        assert all(e in counted for e in accepted if watermark - e[0] <= rolling.window_ms)


def scanned_next_change_ms(rolling: RollingSum) -> int | None:
    """`next_change_ms` found the long way: the first bucket of the window whose leaving
    changes the totals."""
    head = rolling.watermark_ms
    if head is None:
        return None
    head //= rolling.bucket_ms
    slots = rolling.buckets + 1
    for index in range(head - rolling.buckets, head + 1):
        leaves_ms = (index + slots) * rolling.bucket_ms
        probe = rolling.copy()
        probe.advance(leaves_ms)
        if probe.total() != rolling.total():
            return leaves_ms
    return None


# Small amounts, so that credits often cancel a bucket's spend out (an empty bucket again).
SMALL_STEPS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12_000),
        st.integers(min_value=-2, max_value=2),
        st.integers(min_value=0, max_value=1),
        st.sampled_from(["add", "add", "advance", "ask"]),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=8), st.sampled_from([1, 250, 1000]), SMALL_STEPS)
def test_next_change_is_when_the_oldest_bucket_holding_an_amount_leaves(
    buckets: int, bucket_ms: int, steps: list[tuple[int, int, int, str]]
) -> None:
    rolling = RollingSum(buckets * bucket_ms, bucket_ms)
    for offset, nanos, tokens, op in steps:
        ts = T0_MS + offset
        if op == "add":
            rolling.add(ts, nanos, tokens)
        elif op == "advance":
            rolling.advance(ts)
        else:  # asked between other steps, as a ledger is after each spend
            assert rolling.next_change_ms() == scanned_next_change_ms(rolling)
    assert rolling.next_change_ms() == scanned_next_change_ms(rolling)
