"""The kernels' one time window: the edge convention as a table (when a bucket leaves, which
ages always and never count, per `Edge`), the ring's size, late records, a jump past the
window, copies, and a hypothesis property (totals equal a recount of the accepted records
whose bucket the table still counts, whatever the order of records and clock events)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.bucket_ring import BucketRing, Edge

R4J, OVERLAP, CLOSED = Edge.RESILIENCE4J, Edge.OVERLAP, Edge.OVERLAP_CLOSED
W_MS, B_MS = 3_000, 1_000  # three buckets of a second


class Sums(BucketRing):
    """The smallest fold: integer amounts per bucket and their total."""

    __slots__ = ("_amounts", "total")
    COPIED = frozenset({"_amounts"})

    def __init__(self, window_ms: int, bucket_ms: int, edge: Edge) -> None:
        super().__init__(window_ms, bucket_ms, edge)
        self._amounts = [0] * self.slots
        self.total = 0

    def add(self, ts_ms: int, amount: int) -> bool:
        slot = self.place(ts_ms)
        if slot < 0:
            return False
        self._amounts[slot] += amount
        self.total += amount
        return True

    def _evict(self, slot: int) -> None:
        self.total -= self._amounts[slot]
        self._amounts[slot] = 0

    def _evict_all(self) -> None:
        self._amounts = [0] * self.slots
        self.total = 0


# The module docstring's table, with W = 3 s and b = 1 s: an event at `ts_ms` (bucket 1 holds
# [1000, 2000)) and whether the window counts it at `now_ms`.
EDGE_TABLE = [
    # edge, ts_ms, now_ms, counted -- why
    (R4J, 1_000, 3_999, True),  # bucket 1 starts inside (999, 3999]
    (R4J, 1_999, 3_999, True),  # age 2000 = W - b: always counted
    (R4J, 1_999, 4_000, False),  # bucket 1 left at k*b + W = 4000 (age 2001, under W)
    (R4J, 1_000, 4_000, False),  # age 3000 = W: never counted
    (OVERLAP, 1_999, 4_998, True),  # age 2999 < W: always counted
    (OVERLAP, 1_000, 4_998, True),  # age 3998: W + b - 2, its bucket's last ms is in (1998, 4998]
    (OVERLAP, 1_999, 4_999, False),  # bucket 1 left at (k+1)*b - 1 + W = 4999 (age W)
    (OVERLAP, 1_000, 4_999, False),  # age 3999 = W + b - 1: never counted
    (CLOSED, 1_999, 4_999, True),  # age 3000 = W: always counted
    (CLOSED, 1_000, 4_999, True),  # age 3999: W + b - 1, one bucket of extra history
    (CLOSED, 1_999, 5_000, False),  # bucket 1 left at (k+1)*b + W = 5000
    (CLOSED, 1_000, 5_000, False),  # age 4000 = W + b: never counted
]
LEAVES_AT_MS = {R4J: 4_000, OVERLAP: 4_999, CLOSED: 5_000}  # bucket 1, the table's column


@pytest.mark.parametrize(("edge", "ts_ms", "now_ms", "counted"), EDGE_TABLE)
def test_edge_table(edge: Edge, ts_ms: int, now_ms: int, counted: bool) -> None:
    recorded_first = Sums(W_MS, B_MS, edge)
    assert recorded_first.add(ts_ms, 1)
    recorded_first.advance(now_ms)
    assert recorded_first.total == counted
    # The same decision for a record arriving late, when time is already at now_ms.
    late = Sums(W_MS, B_MS, edge)
    late.advance(now_ms)
    assert late.add(ts_ms, 1) is counted
    assert late.in_window(ts_ms) is counted
    assert late.total == counted
    assert late.leaves_at_ms(1) == LEAVES_AT_MS[edge]
    assert (now_ms < late.leaves_at_ms(ts_ms // B_MS)) is counted


@pytest.mark.parametrize(
    ("edge", "bucket_ms", "slots"),
    [(R4J, 1_000, 3), (OVERLAP, 1_000, 4), (CLOSED, 1_000, 4), (OVERLAP, 1, 3_000)],
)
def test_ring_size_is_the_buckets_counted_at_once(edge: Edge, bucket_ms: int, slots: int) -> None:
    assert Sums(W_MS, bucket_ms, edge).slots == slots


def test_window_start_and_counted_buckets() -> None:
    ring = Sums(W_MS, B_MS, R4J)
    assert (ring.watermark_ms, ring.window_start_ms, list(ring.counted())) == (None, None, [])
    assert ring.in_window(0)  # an empty ring takes anything
    ring.advance(10_500)
    assert (ring.watermark_ms, ring.window_start_ms) == (10_500, 8_000)
    assert list(ring.counted()) == [8, 9, 10]
    ring.advance(10_400)  # time never goes backwards
    assert ring.watermark_ms == 10_500


def test_a_jump_past_the_window_empties_it_at_once() -> None:
    ring = Sums(W_MS, B_MS, CLOSED)
    for ts in range(0, 4_000, 250):
        ring.add(ts, 1)
    assert ring.total == 16
    assert ring.add(100_000, 5)
    assert ring.total == 5


def test_copies_are_equal_and_independent() -> None:
    ring = Sums(W_MS, B_MS, OVERLAP)
    ring.add(1_000, 2)
    clone = ring.copy()
    assert clone == ring
    clone.add(1_500, 3)
    clone.advance(60_000)
    assert (ring.total, ring.watermark_ms) == (2, 1_000)
    assert (clone.total, clone.watermark_ms) == (0, 60_000)
    assert clone != ring


def test_a_window_is_whole_buckets() -> None:
    with pytest.raises(ConfigError, match=r"Sums window_ms \(3000\) must be a multiple"):
        Sums(W_MS, 7, R4J)


_ops = st.lists(
    st.tuples(st.booleans(), st.integers(0, 20_000), st.integers(0, 9)),  # (advance?, ts, amount)
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    edge=st.sampled_from(list(Edge)),
    shape=st.sampled_from([(3_000, 1_000), (3_000, 1), (2_000, 500), (700, 7), (60, 60)]),
    ops=_ops,
)
def test_totals_equal_a_recount_of_the_table(
    edge: Edge, shape: tuple[int, int], ops: list[tuple[bool, int, int]]
) -> None:
    window_ms, bucket_ms = shape
    overhang = {R4J: 0, OVERLAP: bucket_ms - 1, CLOSED: bucket_ms}[edge]

    def leaves_at(ts: int) -> int:
        return ts // bucket_ms * bucket_ms + window_ms + overhang

    ring = Sums(window_ms, bucket_ms, edge)
    accepted: list[tuple[int, int]] = []
    now: int | None = None
    for is_advance, ts, amount in ops:
        if is_advance:
            ring.advance(ts)
        else:
            expected = now is None or ts > now or now < leaves_at(ts)
            assert ring.add(ts, amount) is expected
            if expected:
                accepted.append((ts, amount))
        now = ts if now is None else max(now, ts)
        assert ring.watermark_ms == now
        assert ring.total == sum(a for t, a in accepted if now < leaves_at(t))
        ages = [(now - t, a) for t, a in accepted]
        always, never = {
            R4J: (window_ms - bucket_ms, window_ms),
            OVERLAP: (window_ms - 1, window_ms + bucket_ms - 1),
            CLOSED: (window_ms, window_ms + bucket_ms),
        }[edge]
        assert sum(a for age, a in ages if age <= always) <= ring.total
        assert ring.total <= sum(a for age, a in ages if age < never)
