"""Sliding windows of call outcomes: count-based and time-based (by event time).

Resilience4j's two window kinds (FixedSizeSlidingWindowMetrics, SlidingTimeWindowMetrics):
a ring of slots plus a running total; recording adds to the total and subtracts whatever falls
out of the window, so a record is O(1) and a snapshot is a copy of the total.

Differences from Resilience4j, all for replay (DESIGN §6):
- Time comes with the record (`ts_ms`, event time), never from a clock.
- A time window accepts a late record into its own bucket while that bucket is still inside
  the window and the record is within the allowed lateness; otherwise `record` returns False
  (too late) and the caller counts and audits it. Nothing is dropped silently.
- Durations are summed as integer microseconds so subtract-on-evict never drifts; cost is an
  exact Decimal.

The slots hold immutable values and `copy()` is a shallow list copy, so a kernel can keep its
state copy-on-write without copying outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from workers.errors import ConfigError

_ZERO_USD = Decimal(0)


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
class Aggregate:
    """Sums over a set of outcomes; closed under add and subtract (the window's running total)."""

    calls: int = 0
    failed_calls: int = 0
    slow_calls: int = 0
    slow_failed_calls: int = 0
    duration_us: int = 0
    cost_usd: Decimal = _ZERO_USD

    def plus(self, outcome: Outcome) -> Aggregate:
        return Aggregate(
            self.calls + 1,
            self.failed_calls + outcome.failed,
            self.slow_calls + outcome.slow,
            self.slow_failed_calls + (outcome.slow and outcome.failed),
            self.duration_us + outcome.duration_us,
            self.cost_usd + outcome.cost_usd,
        )

    def minus(self, other: Aggregate) -> Aggregate:
        return Aggregate(
            self.calls - other.calls,
            self.failed_calls - other.failed_calls,
            self.slow_calls - other.slow_calls,
            self.slow_failed_calls - other.slow_failed_calls,
            self.duration_us - other.duration_us,
            self.cost_usd - other.cost_usd,
        )


EMPTY = Aggregate()


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """What a window holds now. Rates are percentages of the calls in the window (0 when empty);
    whether too few calls make a rate meaningless (-1 in Resilience4j) is the policy's call."""

    total_calls: int
    failed_calls: int
    slow_calls: int
    slow_failed_calls: int
    total_duration_ms: float
    total_cost_usd: Decimal

    @classmethod
    def of(cls, total: Aggregate) -> WindowSnapshot:
        return cls(
            total.calls,
            total.failed_calls,
            total.slow_calls,
            total.slow_failed_calls,
            total.duration_us / 1000,
            total.cost_usd,
        )

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


class Window(Protocol):
    """What a breaker needs from a window, whichever kind it is."""

    def record(self, outcome: Outcome, ts_ms: int) -> bool: ...
    def advance(self, ts_ms: int) -> None: ...
    def snapshot(self) -> WindowSnapshot: ...
    def copy(self) -> Window: ...


@dataclass(slots=True)
class CountWindow:
    """The last `size` recorded outcomes, in the order they were recorded."""

    size: int
    _ring: list[Outcome | None] = field(init=False, repr=False)
    _head: int = field(default=0, init=False)
    _total: Aggregate = field(default=EMPTY, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"CountWindow size must be an integer >= 1, not {self.size!r}")
        self._ring = [None] * self.size

    def record(self, outcome: Outcome, ts_ms: int) -> bool:
        """Add `outcome`, evicting the oldest once full. `ts_ms` does not matter here: a count
        window is ordered by arrival. Always applied (returns True)."""
        evicted = self._ring[self._head]
        total = self._total.plus(outcome)
        if evicted is not None:
            total = total.minus(EMPTY.plus(evicted))
        self._total = total
        self._ring[self._head] = outcome
        self._head = (self._head + 1) % self.size
        return True

    def advance(self, ts_ms: int) -> None:
        """Time does not move a count window."""

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot.of(self._total)

    def copy(self) -> CountWindow:
        clone = CountWindow.__new__(CountWindow)
        clone.size = self.size
        clone._ring = self._ring.copy()
        clone._head = self._head
        clone._total = self._total
        return clone


@dataclass(slots=True)
class TimeWindow:
    """Outcomes whose event time falls in the last `window_s` seconds, in `bucket_s` buckets.

    Buckets are keyed by the epoch second their span starts at; the window covers the bucket
    of the newest event time seen (the head) and the `window_s / bucket_s - 1` before it, as
    Resilience4j's does with one-second buckets. Memory is one aggregate per bucket.
    """

    window_s: int
    bucket_s: int = 1
    allowed_lateness_ms: int = 0
    _slots: list[Aggregate] = field(init=False, repr=False)
    _head_key_s: int | None = field(default=None, init=False)
    _watermark_ms: int | None = field(default=None, init=False)
    _total: Aggregate = field(default=EMPTY, init=False)

    def __post_init__(self) -> None:
        for name in ("window_s", "bucket_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TimeWindow {name} must be an integer >= 1, not {value!r}")
        if self.window_s % self.bucket_s:
            raise ConfigError(
                f"TimeWindow window_s ({self.window_s}) must be a multiple of "
                f"bucket_s ({self.bucket_s})"
            )
        if self.allowed_lateness_ms < 0:
            raise ConfigError(
                f"TimeWindow allowed_lateness_ms must be >= 0, not {self.allowed_lateness_ms!r}"
            )
        self._slots = [EMPTY] * (self.window_s // self.bucket_s)

    @property
    def buckets(self) -> int:
        return len(self._slots)

    @property
    def watermark_ms(self) -> int | None:
        """Newest event time seen (records and `advance`)."""
        return self._watermark_ms

    def bucket_key_s(self, ts_ms: int) -> int:
        """Epoch second at which the bucket holding `ts_ms` starts."""
        return (ts_ms // 1000) // self.bucket_s * self.bucket_s

    def in_window(self, ts_ms: int) -> bool:
        """Whether a record at `ts_ms` would still be counted (its bucket not yet evicted)."""
        if self._head_key_s is None:
            return True
        return self.bucket_key_s(ts_ms) > self._head_key_s - self.window_s

    def record(self, outcome: Outcome, ts_ms: int) -> bool:
        """Add `outcome` at event time `ts_ms`. Returns False, changing nothing, when the record
        is too late: older than the allowed lateness or its bucket already left the window."""
        if self._watermark_ms is not None and ts_ms < self._watermark_ms:
            if self._watermark_ms - ts_ms > self.allowed_lateness_ms or not self.in_window(ts_ms):
                return False
        else:
            self.advance(ts_ms)
        key_s = self.bucket_key_s(ts_ms)
        slot = self._slot(key_s)
        self._slots[slot] = self._slots[slot].plus(outcome)
        self._total = self._total.plus(outcome)
        return True

    def advance(self, ts_ms: int) -> None:
        """Move event time to `ts_ms` (no-op if not newer), evicting buckets that fall out."""
        if self._watermark_ms is not None and ts_ms <= self._watermark_ms:
            return
        self._watermark_ms = ts_ms
        key_s = self.bucket_key_s(ts_ms)
        head = self._head_key_s
        self._head_key_s = key_s
        if head is None or key_s <= head:
            return
        steps = (key_s - head) // self.bucket_s
        if steps >= len(self._slots):
            self._slots = [EMPTY] * len(self._slots)
            self._total = EMPTY
            return
        for i in range(1, steps + 1):
            slot = self._slot(head + i * self.bucket_s)
            self._total = self._total.minus(self._slots[slot])
            self._slots[slot] = EMPTY

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot.of(self._total)

    def copy(self) -> TimeWindow:
        clone = TimeWindow.__new__(TimeWindow)
        clone.window_s = self.window_s
        clone.bucket_s = self.bucket_s
        clone.allowed_lateness_ms = self.allowed_lateness_ms
        clone._slots = self._slots.copy()
        clone._head_key_s = self._head_key_s
        clone._watermark_ms = self._watermark_ms
        clone._total = self._total
        return clone

    def _slot(self, key_s: int) -> int:
        return (key_s // self.bucket_s) % len(self._slots)
