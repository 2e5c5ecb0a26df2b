"""Sliding-window rate limits in event time (requests/min, tokens/min per scope).

Definitions (quoted by the README):

- Event time is epoch milliseconds and comes with each record (or an `advance`, e.g. a clock
  event); the current time `t` is the newest event time seen. Nothing reads a clock.
- The window is `window_ms` long and is cut into `buckets` slices of
  `slice_ms = window_ms / buckets`, epoch-aligned: slice `k` holds event times
  `[k * slice_ms, (k + 1) * slice_ms)`.
- A slice is *in the window* while its newest millisecond is less than `window_ms` old, i.e.
  slice `k` is counted at time `t` iff `(k + 1) * slice_ms - 1 > t - window_ms`. So the counted
  slices are those that overlap the exact window `(t - window_ms, t]`.
- `used()` is the sum of the amounts in the counted slices. `exceeded()` is `used() > limit`;
  `remaining()` is `max(0, limit - used())`.
- Accuracy of the slice resolution: every event of age `t - ts < window_ms` is counted (never
  an undercount); an event of age `>= window_ms + slice_ms - 1` never is. In between (an age
  in `[window_ms, window_ms + slice_ms - 1)`) it is still counted when it shares a slice with
  younger events. Hence, exactly,
  ``sum(a for ts, a in events if t - window_ms < ts <= t)`` <= ``used()`` <=
  ``sum(a for ts, a in events if t - window_ms - slice_ms + 1 < ts <= t)``.
  With `buckets == window_ms` (1 ms slices) the count is exact. With the default 60 slices of a
  minute, usage may include events up to 999 ms older than a minute, never fewer.
- Unlike fixed one-minute windows, there is no reset at a boundary: `limit` requests in the
  last second of one minute and `limit` in the first second of the next are 2 x limit within
  one window, so the limiter reports it exceeded.
- Out-of-order records: a record older than `t` goes into its own slice while that slice is
  still counted; a record whose slice has left the window returns False and changes nothing
  (the caller counts and audits it as late).
- `capacity_returns_at()`: when exceeded, the earliest event time at which, with no further
  traffic, `used() <= limit` again: the slices are dropped oldest first, and slice `k` leaves
  the window at `(k + 1) * slice_ms - 1 + window_ms`. Exact for the slices held (it may be up
  to `slice_ms - 1` ms later than an exact per-event window would say, never earlier).
- Burst allowance (the seeds' `burst_allowance`, e.g. 1.2): the caller passes
  `limit = floor(base_limit * allowance)`; the limiter knows only the one limit.

The slices are the buckets of the kernels' one time window (`bucket_ring.BucketRing`) with its
`OVERLAP` edge: a limit never counts less than the exact window, so it errs long where
Resilience4j's edge (breakers, SLOs) errs short.

Cost: `record` is O(1) amortised (each slice is cleared once when it leaves); memory is one
64-bit counter per slice plus one (`buckets + 1`, in an `array`; `buckets` with 1 ms slices,
which need no extra one). `SliceRing` is the reusable part: the spend kernels
(`spend_anomaly.RapidConsumption`) use the same ring over nano-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.kernels.bucket_ring import BucketRing, Edge, IntSlots
from workers.kernels.checks import check_int, check_whole_buckets

DEFAULT_WINDOW_MS = 60_000
DEFAULT_BUCKETS = 60


class SliceRing(BucketRing):
    """Non-negative integer amounts summed over a sliding event-time window of slices: a
    `BucketRing` with the `OVERLAP` edge (the module docstring has the exact window).

    The ring has `window_ms / slice_ms + 1` slots because the counted slices span that many
    when `t` is not the last millisecond of a slice (a partial oldest slice plus the full ones
    up to `t`'s). Every slot outside the counted range is zero (cleared as its slice leaves).
    """

    __slots__ = ("_sums",)
    COPIED = frozenset({"_sums"})

    def __init__(self, window_ms: int, slice_ms: int) -> None:
        check_whole_buckets("SliceRing", "window_ms", window_ms, "slice_ms", slice_ms)
        super().__init__(window_ms, slice_ms, Edge.OVERLAP)
        self._sums = IntSlots.zeros(self.slots)

    @property
    def slice_ms(self) -> int:
        return self.bucket_ms

    @property
    def total(self) -> int:
        """Sum of the counted slices."""
        return self._sums.total

    def add(self, ts_ms: int, amount: int) -> bool:
        """Add `amount` (>= 0) at event time `ts_ms`, moving time forward if it is newer.
        Returns False, changing nothing, when its slice has already left the window."""
        if amount < 0:
            raise ValueError(f"amount must be >= 0, not {amount!r}")
        slot = self.place(ts_ms)
        if slot < 0:
            return False
        if amount:
            self._sums.add(slot, amount)
        return True

    def slices(self) -> list[tuple[int, int]]:
        """The counted slices holding something, oldest first, as (slice index, amount)."""
        values, slots = self._sums.slots, self.slots
        return [(index, values[index % slots]) for index in self.counted() if values[index % slots]]

    def at_or_below_at(self, level: int) -> int | None:
        """Earliest event time at which, with no further traffic, the total is <= `level`;
        None when it already is. O(slices)."""
        total = self._sums.total
        if total <= level:
            return None
        for index, amount in self.slices():
            total -= amount
            if total <= level:
                return self.leaves_at_ms(index)
        raise AssertionError("unreachable: the total is the sum of the slices")  # pragma: no cover

    def _evict(self, slot: int) -> None:
        self._sums.clear(slot)

    def _evict_all(self) -> None:
        if self._sums.total:  # amounts are >= 0: a zero total means every slot is zero
            self._sums.clear_all()


@dataclass(slots=True)
class SlidingRateLimit:
    """`limit` (requests or tokens) per `window_ms` of event time, over `buckets` slices.

    Mutable, updated in place (part of a scope's state); `copy()` gives an independent one.
    """

    limit: int
    window_ms: int = DEFAULT_WINDOW_MS
    buckets: int = DEFAULT_BUCKETS
    _ring: SliceRing = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("SlidingRateLimit", "limit", self.limit, 0)
        check_whole_buckets(
            "SlidingRateLimit", "window_ms", self.window_ms, "buckets", self.buckets
        )
        self._ring = SliceRing(self.window_ms, self.window_ms // self.buckets)

    @property
    def slice_ms(self) -> int:
        return self._ring.slice_ms

    @property
    def watermark_ms(self) -> int | None:
        return self._ring.watermark_ms

    def record(self, ts_ms: int, amount: int = 1) -> bool:
        """Count `amount` (1 per request, or the tokens) at event time `ts_ms`. Returns False,
        changing nothing, when the record is too old for the window (late)."""
        return self._ring.add(ts_ms, amount)

    def advance(self, ts_ms: int) -> None:
        """Event time is now `ts_ms` (a clock event): older slices leave the window."""
        self._ring.advance(ts_ms)

    def used(self) -> int:
        return self._ring.total

    def remaining(self) -> int:
        return max(0, self.limit - self._ring.total)

    def exceeded(self) -> bool:
        return self._ring.total > self.limit

    def capacity_returns_at(self) -> int | None:
        """Earliest event time at which, with no further traffic, usage is <= limit again;
        None when not exceeded."""
        return self._ring.at_or_below_at(self.limit)

    def copy(self) -> SlidingRateLimit:
        clone = SlidingRateLimit.__new__(SlidingRateLimit)
        clone.limit = self.limit
        clone.window_ms = self.window_ms
        clone.buckets = self.buckets
        clone._ring = self._ring.copy()
        return clone
