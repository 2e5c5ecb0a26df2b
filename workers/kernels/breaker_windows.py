"""A breaker's sliding windows of call outcomes: count-based and time-based (by event time).

Resilience4j's two window kinds (FixedSizeSlidingWindowMetrics, SlidingTimeWindowMetrics):
a ring of slots plus running totals; recording adds to the totals and subtracts whatever falls
out of the window, so a record is O(1) and the totals are always those of the window. The time
window is a `workers.kernels.bucket_ring.BucketRing` (the kernels' one time window, with
Resilience4j's edge); the count window is ordered by arrival, not time.

Differences from Resilience4j, all for replay (DESIGN §6):
- Time comes with the record (`ts_ms`, event time), never from a clock.
- A time window accepts a late record into its own bucket while that bucket is still inside
  the window and the record is within the allowed lateness; otherwise `add` returns False
  (too late) and the caller counts and audits it. Nothing is dropped silently.

Built for the hot path (one window per breaker key, every call): windows are mutable and
updated in place (`copy()` gives an independent one). Totals are plain ints. A count window
keeps one byte of flags per slot (bit 0 failed, bit 1 slow); a time window four counters per
bucket in an array. Cost and duration are optional channels, allocated only when asked for
(`track_cost`, `track_duration`), because most policies need neither:
- cost is summed exactly as integer units of 10**-scale USD (nano-dollars, scale 9, as long
  as every amount fits; a finer amount rescales the whole channel, so the sum stays exact for
  any Decimal - MoneyUSD does not bound the decimal places);
- duration is summed as integer microseconds, so subtract-on-evict never drifts.
Counters and slots start as compact machine integers and widen on overflow, never wrapping.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from workers.errors import ConfigError
from workers.kernels.bucket_ring import BucketRing, IntSlots
from workers.kernels.checks import check_int, check_whole_buckets

_ZERO_USD = Decimal(0)
_NANO_SCALE = 9
_FAILED = 1
_SLOW = 2


@dataclass(frozen=True, slots=True)
class Outcome:
    """One classified call: what a window needs to know about it."""

    failed: bool
    slow: bool
    duration_ms: float = 0.0
    cost_usd: Decimal = _ZERO_USD

    @property
    def duration_us(self) -> int:
        return round(self.duration_ms * 1000)


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """What a window holds now. Rates are percentages of the calls in the window (0 when empty);
    whether too few calls make a rate meaningless (-1 in Resilience4j) is the policy's call.
    Duration and cost are 0 unless the window tracks them."""

    total_calls: int
    failed_calls: int
    slow_calls: int
    slow_failed_calls: int
    total_duration_ms: float
    total_cost_usd: Decimal

    @property
    def successful_calls(self) -> int:
        return self.total_calls - self.failed_calls

    @property
    def slow_successful_calls(self) -> int:
        return self.slow_calls - self.slow_failed_calls

    @property
    def average_duration_ms(self) -> float:
        return self.total_duration_ms / self.total_calls if self.total_calls else 0.0

    @property
    def failure_rate_pct(self) -> float:
        return self.failed_calls * 100.0 / self.total_calls if self.total_calls else 0.0

    @property
    def slow_call_rate_pct(self) -> float:
        return self.slow_calls * 100.0 / self.total_calls if self.total_calls else 0.0


# --- channels ---


@dataclass(slots=True)
class CostSlots:
    """Exact USD amounts per slot, as integer units of 10**-scale USD."""

    ints: IntSlots
    scale: int = _NANO_SCALE
    unit: int = 10**_NANO_SCALE
    """10**scale: units per USD."""

    @classmethod
    def zeros(cls, n: int) -> CostSlots:
        return cls(IntSlots.zeros(n))

    def units(self, amount: Decimal) -> int:
        """`amount` in units, exactly; rescales the channel first if it has finer digits."""
        numerator, denominator = amount.as_integer_ratio()
        if denominator == 1:
            return numerator * self.unit
        units, rest = divmod(numerator * self.unit, denominator)
        if rest:
            self._rescale_for(denominator)
            units = numerator * self.unit // denominator
        return units

    def total_usd(self) -> Decimal:
        total, scale = self.ints.total, self.scale
        while scale and total % 10 == 0:  # drop trailing zeros: 10.01, not 10.010000000
            total //= 10
            scale -= 1
        return Decimal(f"{total}E-{scale}")  # from a string: exact at any size

    def exceeds(self, numerator: int, denominator: int) -> bool:
        """Whether the total is > numerator/denominator USD (compared exactly)."""
        return self.ints.total * denominator > numerator * self.unit

    def copy(self) -> CostSlots:
        return CostSlots(self.ints.copy(), self.scale, self.unit)

    def _rescale_for(self, denominator: int) -> None:
        # A reduced decimal fraction's denominator is 2**a * 5**b: some power of ten is a
        # multiple of it. Only amounts with more than 9 decimal places get here.
        scale = self.scale
        while 10**scale % denominator:
            scale += 1
        self.ints.scale_by(10 ** (scale - self.scale))
        self.scale, self.unit = scale, 10**scale


# --- windows ---


class Window(Protocol):
    """What a breaker needs from a window, whichever kind it is. The totals are attributes,
    always those of the calls in the window."""

    calls: int
    failed_calls: int
    slow_calls: int
    slow_failed_calls: int
    track_cost: bool
    track_duration: bool
    cost: CostSlots | None
    duration: IntSlots | None

    def add(
        self, failed: bool, slow: bool, cost_usd: Decimal, duration_ms: float, ts_ms: int
    ) -> bool: ...
    def record(self, outcome: Outcome, ts_ms: int) -> bool: ...
    def advance(self, ts_ms: int) -> None: ...
    def snapshot(self) -> WindowSnapshot: ...
    def copy(self) -> Window: ...


def _snapshot(window: Window, duration: IntSlots | None) -> WindowSnapshot:
    return WindowSnapshot(
        window.calls,
        window.failed_calls,
        window.slow_calls,
        window.slow_failed_calls,
        duration.total / 1000 if duration is not None else 0.0,
        window.cost.total_usd() if window.cost is not None else _ZERO_USD,
    )


def _copy_totals(source: Window, clone: Window) -> None:
    """What every window kind holds beside its slots: the flags and the running totals."""
    clone.track_cost = source.track_cost
    clone.track_duration = source.track_duration
    clone.calls = source.calls
    clone.failed_calls = source.failed_calls
    clone.slow_calls = source.slow_calls
    clone.slow_failed_calls = source.slow_failed_calls
    clone.cost = source.cost.copy() if source.cost is not None else None
    clone.duration = source.duration.copy() if source.duration is not None else None


@dataclass(slots=True)
class CountWindow:
    """The last `size` recorded outcomes, in the order they were recorded."""

    size: int
    track_cost: bool = False
    track_duration: bool = False
    calls: int = field(default=0, init=False)
    failed_calls: int = field(default=0, init=False)
    slow_calls: int = field(default=0, init=False)
    slow_failed_calls: int = field(default=0, init=False)
    cost: CostSlots | None = field(default=None, init=False)
    duration: IntSlots | None = field(default=None, init=False)
    _flags: bytearray = field(init=False, repr=False)
    _head: int = field(default=0, init=False)
    _channels: bool = field(default=False, init=False, repr=False)
    """Whether cost or duration is tracked (one check on the hot path instead of two)."""

    def __post_init__(self) -> None:
        check_int("CountWindow", "size", self.size, 1)
        self._flags = bytearray(self.size)
        self._channels = self.track_cost or self.track_duration
        if self.track_cost:
            self.cost = CostSlots.zeros(self.size)
        if self.track_duration:
            self.duration = IntSlots.zeros(self.size)

    def add(
        self, failed: bool, slow: bool, cost_usd: Decimal, duration_ms: float, ts_ms: int
    ) -> bool:
        """Add one outcome, evicting the oldest once full. `ts_ms` does not matter here: a
        count window is ordered by arrival. Always applied (returns True)."""
        head = self._head
        flags = self._flags
        if self.calls == self.size:  # full: the slot at the head is the oldest; evict it
            old = flags[head]
            if old:
                if old & _FAILED:
                    self.failed_calls -= 1
                if old & _SLOW:
                    self.slow_calls -= 1
                    if old & _FAILED:
                        self.slow_failed_calls -= 1
        else:
            self.calls += 1
        new = 0
        if failed:
            new = _FAILED
            self.failed_calls += 1
        if slow:
            new |= _SLOW
            self.slow_calls += 1
            if failed:
                self.slow_failed_calls += 1
        flags[head] = new
        if self._channels:
            self._put_channels(head, cost_usd, duration_ms)
        head += 1
        self._head = 0 if head == self.size else head
        return True

    def _put_channels(self, slot: int, cost_usd: Decimal, duration_ms: float) -> None:
        if self.cost is not None:
            self.cost.ints.put(slot, self.cost.units(cost_usd) if cost_usd else 0)
        if self.duration is not None:
            self.duration.put(slot, round(duration_ms * 1000))

    def record(self, outcome: Outcome, ts_ms: int) -> bool:
        return self.add(outcome.failed, outcome.slow, outcome.cost_usd, outcome.duration_ms, ts_ms)

    def advance(self, ts_ms: int) -> None:
        """Time does not move a count window."""

    def snapshot(self) -> WindowSnapshot:
        return _snapshot(self, self.duration)

    def copy(self) -> CountWindow:
        clone = CountWindow.__new__(CountWindow)
        clone.size = self.size
        _copy_totals(self, clone)
        clone._flags = self._flags[:]
        clone._head = self._head
        clone._channels = self._channels
        return clone


_COUNTERS = 4  # per time bucket: calls, failed, slow, slow and failed


class TimeWindow(BucketRing):
    """Outcomes whose event time falls in the last `window_s` seconds, in `bucket_s` buckets.

    A `BucketRing` with Resilience4j's edge (`workers.kernels.bucket_ring`): bucket `i` spans
    event times [i * bucket_s, (i + 1) * bucket_s) seconds since the epoch; the window covers
    the bucket of the newest event time seen (the head) and the `window_s / bucket_s - 1`
    before it, as Resilience4j's does with one-second buckets. Memory is four counters per
    bucket (plus one per tracked channel).
    """

    __slots__ = (
        "_counts",
        "allowed_lateness_ms",
        "bucket_s",
        "calls",
        "cost",
        "duration",
        "failed_calls",
        "slow_calls",
        "slow_failed_calls",
        "track_cost",
        "track_duration",
        "window_s",
    )
    COPIED = frozenset({"_counts", "cost", "duration"})

    def __init__(
        self,
        window_s: int,
        bucket_s: int = 1,
        allowed_lateness_ms: int = 0,
        track_cost: bool = False,
        track_duration: bool = False,
    ) -> None:
        check_whole_buckets("TimeWindow", "window_s", window_s, "bucket_s", bucket_s)
        if allowed_lateness_ms < 0:
            raise ConfigError(
                f"TimeWindow allowed_lateness_ms must be >= 0, not {allowed_lateness_ms!r}"
            )
        super().__init__(window_s * 1000, bucket_s * 1000)
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.allowed_lateness_ms = allowed_lateness_ms
        self.track_cost = track_cost
        self.track_duration = track_duration
        self.calls = self.failed_calls = self.slow_calls = self.slow_failed_calls = 0
        # Unsigned 16-bit counters (a 60 s window is 480 bytes): a bucket with more than 65535
        # calls on one key switches the array to 64 bits (see `add`) instead of wrapping.
        self._counts = array("H", bytes(2 * _COUNTERS * self.buckets))
        self.cost = CostSlots.zeros(self.buckets) if track_cost else None
        self.duration = IntSlots.zeros(self.buckets) if track_duration else None

    def bucket_key_s(self, ts_ms: int) -> int:
        """Epoch second at which the bucket holding `ts_ms` starts."""
        return ts_ms // self.bucket_ms * self.bucket_s

    def add(
        self, failed: bool, slow: bool, cost_usd: Decimal, duration_ms: float, ts_ms: int
    ) -> bool:
        """Add one outcome at event time `ts_ms`. Returns False, changing nothing, when it is
        too late: older than the allowed lateness or its bucket already left the window."""
        now = self.now_ms
        if ts_ms > now:  # `place` for a later time, inlined (one call fewer per call)
            if ts_ms < self.turn_ms:
                self.now_ms = ts_ms
            else:
                self.advance(ts_ms)
            slot = self._head_slot
        else:
            if now - ts_ms > self.allowed_lateness_ms:
                return False
            slot = self.place(ts_ms)
            if slot < 0:
                return False
        base = slot * _COUNTERS
        counts = self._counts
        try:  # calls first: it is the largest counter, so if it fits the others do
            counts[base] += 1
        except OverflowError:
            counts = self._counts = array("q", counts)
            counts[base] += 1
        self.calls += 1
        if failed:
            counts[base + 1] += 1
            self.failed_calls += 1
        if slow:
            counts[base + 2] += 1
            self.slow_calls += 1
            if failed:
                counts[base + 3] += 1
                self.slow_failed_calls += 1
        if self.cost is not None and cost_usd:
            self.cost.ints.add(slot, self.cost.units(cost_usd))
        if self.duration is not None:
            self.duration.add(slot, round(duration_ms * 1000))
        return True

    def record(self, outcome: Outcome, ts_ms: int) -> bool:
        return self.add(outcome.failed, outcome.slow, outcome.cost_usd, outcome.duration_ms, ts_ms)

    def snapshot(self) -> WindowSnapshot:
        return _snapshot(self, self.duration)

    def _evict(self, slot: int) -> None:
        counts = self._counts
        base = slot * _COUNTERS
        if counts[base]:
            self.calls -= counts[base]
            self.failed_calls -= counts[base + 1]
            self.slow_calls -= counts[base + 2]
            self.slow_failed_calls -= counts[base + 3]
            counts[base] = counts[base + 1] = counts[base + 2] = counts[base + 3] = 0
        if self.cost is not None:
            self.cost.ints.clear(slot)
        if self.duration is not None:
            self.duration.clear(slot)

    def _evict_all(self) -> None:
        counts = self._counts
        self._counts = array(counts.typecode, bytes(len(counts) * counts.itemsize))
        self.calls = self.failed_calls = self.slow_calls = self.slow_failed_calls = 0
        if self.cost is not None:
            self.cost.ints.clear_all()
        if self.duration is not None:
            self.duration.clear_all()
