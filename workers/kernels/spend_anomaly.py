"""Spend anomalies: a window's spend against its baseline, and rapid budget consumption.

Definitions (quoted by the README). Spend is integer nano-dollars (>= 0), event time is epoch
milliseconds and comes with each call (`add`, or `advance` for a clock event); nothing reads a
clock. Both detectors return their transitions (`...Started` once when the condition begins,
`...Ended` once when it stops; nothing while it holds) so the caller alerts and resolves once.

`SpendRateAnomaly` (the seeds' `cost_anomaly_detection`: `anomaly_threshold_factor` = `factor`,
`detection_window_hours` = `window_ms`):
- Windows are tumbling and epoch-aligned: window `k` is `[k * window_ms, (k + 1) * window_ms)`.
  The current window is the one holding the newest event time seen; it is *closed* when event
  time reaches its end. Windows before the first event are not part of the history.
- The baseline of a closing window is the mean spend of the `baseline_windows` closed windows
  before it; windows with no spend count as 0. There is no baseline (and no anomaly) until
  `baseline_windows` windows have closed.
- A closed window is anomalous when `spend > factor * baseline` and
  `baseline >= minimum_baseline_nanos`, compared exactly (`factor` is taken as the decimal it
  prints as, e.g. 2.5 = 5/2; the mean is not rounded). `baseline_nanos` in outputs is the mean
  rounded down.
- The detector is anomalous while the most recently closed window was: `AnomalyStarted` when a
  closing window is anomalous and the previous one was not, `AnomalyEnded` when it is not and
  the previous one was. A window with no spend is never anomalous, so a gap in traffic ends an
  anomaly at the first empty window.
- A record for a window that has already closed is late: not counted (closed verdicts are
  final, so replays agree), tallied in `late_events` / `late_nanos` for the caller to audit.
- `current()` reports the window in progress: its spend so far, the baseline it will be
  judged against, and the spend above which it will close anomalous (`threshold_nanos`).
- Memory: a ring of `baseline_windows` integers.

`RapidConsumption` (the seeds' `rapid_budget_consumption_rate`: 10 % of a budget in 15 min):
- Spend is summed over a sliding window of `window_ms` in slices of `bucket_ms`, exactly as a
  rate limit's usage (`rate_limit.SliceRing`, see that module for the window and its accuracy:
  never less than the spend of the last `window_ms`, at most `bucket_ms - 1` ms more).
- It is active while that sum is `> fraction * limit_nanos` (exactly; `threshold_nanos` is that
  product rounded down, and `sum > threshold_nanos` is the same test for integer sums).
- `RapidConsumptionStarted` / `Ended` carry the event time at which the change was seen (the
  newest event time; an `advance` with no spend can end it), the window's spend and the
  threshold. `ends_at()` says beforehand when it would end with no further spend.
- A record whose slice has left the window is late: not counted, tallied like above.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from decimal import Decimal

from workers.errors import ConfigError
from workers.kernels.bucket_ring import IntSlots
from workers.kernels.checks import check_int, check_whole_buckets
from workers.kernels.rate_limit import SliceRing

DEFAULT_BASELINE_WINDOWS = 6
DEFAULT_FACTOR = 2.0
DEFAULT_RAPID_FRACTION = 0.10
DEFAULT_RAPID_WINDOW_MS = 900_000
DEFAULT_RAPID_BUCKET_MS = 60_000


def exact_ratio(owner: str, name: str, value: float | Decimal) -> tuple[int, int]:
    """A positive finite number as (numerator, denominator) of the decimal it prints as, so 1.1
    is 11/10 rather than the binary float's 2476979795053773/2251799813685248."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(f"{owner} {name} must be a number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{owner} {name} must be a finite number > 0, not {value!r}")
    return Decimal(str(value)).as_integer_ratio()


def _check_nanos(nanos: int) -> None:
    if nanos < 0:
        raise ValueError(f"spend must be >= 0 nano-dollars, not {nanos!r}")


# --- SpendRateAnomaly ---


@dataclass(frozen=True, slots=True)
class AnomalyStarted:
    """The window starting at `window_start_ms` closed with `spend_nanos` above the factor
    times its baseline (after one that did not)."""

    window_start_ms: int
    spend_nanos: int
    baseline_nanos: int


@dataclass(frozen=True, slots=True)
class AnomalyEnded:
    """The window starting at `window_start_ms` closed within the factor (after an anomalous
    one): resolve the alert."""

    window_start_ms: int
    spend_nanos: int
    baseline_nanos: int


@dataclass(frozen=True, slots=True)
class SpendRateSnapshot:
    """The window in progress, for the budget state record. Baseline, ratio and threshold are
    None until there is a baseline; ratio is also None when the baseline is 0."""

    window_start_ms: int | None
    spend_nanos: int
    baseline_nanos: int | None
    ratio: float | None
    """Spend so far over the baseline mean."""
    threshold_nanos: int | None
    """The window closes anomalous if its spend ends above this (and the baseline is at
    least the minimum)."""
    anomalous: bool
    """Whether the last closed window was anomalous."""


SpendRateTransition = AnomalyStarted | AnomalyEnded


@dataclass(slots=True)
class SpendRateAnomaly:
    """Tumbling-window spend against the mean of the previous windows (module docstring).

    Mutable, updated in place; `copy()` gives an independent one.
    """

    window_ms: int
    baseline_windows: int = DEFAULT_BASELINE_WINDOWS
    factor: float | Decimal = DEFAULT_FACTOR
    minimum_baseline_nanos: int = 0
    window_index: int | None = field(default=None, init=False)
    """Index of the window in progress; None before the first event."""
    spend_nanos: int = field(default=0, init=False)
    """Spend in the window in progress."""
    anomalous: bool = field(default=False, init=False)
    late_events: int = field(default=0, init=False)
    late_nanos: int = field(default=0, init=False)
    _closed: IntSlots = field(init=False, repr=False)
    """Spend of the last `baseline_windows` closed windows (a ring; `total` is their sum)."""
    _next: int = field(default=0, init=False, repr=False)
    _closed_count: int = field(default=0, init=False, repr=False)
    """Windows closed so far, capped at `baseline_windows` (all that matters is reaching it)."""
    _factor_num: int = field(default=2, init=False, repr=False)
    _factor_den: int = field(default=1, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("SpendRateAnomaly", "window_ms", self.window_ms, 1)
        check_int("SpendRateAnomaly", "baseline_windows", self.baseline_windows, 1)
        check_int("SpendRateAnomaly", "minimum_baseline_nanos", self.minimum_baseline_nanos, 0)
        self._factor_num, self._factor_den = exact_ratio("SpendRateAnomaly", "factor", self.factor)
        self._closed = IntSlots.zeros(self.baseline_windows)

    def accepts(self, ts_ms: int) -> bool:
        """Whether a record at `ts_ms` would be counted (its window has not closed)."""
        return self.window_index is None or ts_ms // self.window_ms >= self.window_index

    def add(self, ts_ms: int, nanos: int) -> tuple[SpendRateTransition, ...]:
        """Count `nanos` at event time `ts_ms`, first closing any windows it passes."""
        _check_nanos(nanos)
        transitions = self.advance(ts_ms)
        current = self.window_index
        if current is not None and ts_ms // self.window_ms < current:
            self.late_events += 1
            self.late_nanos += nanos
        else:
            self.spend_nanos += nanos
        return transitions

    def advance(self, ts_ms: int) -> tuple[SpendRateTransition, ...]:
        """Event time is `ts_ms`: close the window in progress (and any empty ones after it)
        if it has ended."""
        index = ts_ms // self.window_ms
        current = self.window_index
        if current is None:
            self.window_index = index
            return ()
        if index <= current:
            return ()
        first = self._close(current, self.spend_nanos)
        skipped = index - current - 1  # windows with no event at all: closed with 0 spend
        second = self._close(current + 1, 0) if skipped else None
        for _ in range(min(skipped - 1, self.baseline_windows)):
            self._push(0)  # their verdict is "not anomalous", already given by the first
        self.window_index, self.spend_nanos = index, 0
        if first is None:
            return () if second is None else (second,)
        return (first,) if second is None else (first, second)

    def baseline_total(self) -> int | None:
        """Sum of the last `baseline_windows` closed windows; None until that many closed."""
        return self._closed.total if self._closed_count == self.baseline_windows else None

    def current(self) -> SpendRateSnapshot:
        total = self.baseline_total()
        start = None if self.window_index is None else self.window_index * self.window_ms
        if total is None:
            return SpendRateSnapshot(start, self.spend_nanos, None, None, None, self.anomalous)
        n = self.baseline_windows
        ratio = self.spend_nanos * n / total if total else None
        threshold = self._factor_num * total // (self._factor_den * n)
        return SpendRateSnapshot(
            start, self.spend_nanos, total // n, ratio, threshold, self.anomalous
        )

    def copy(self) -> SpendRateAnomaly:
        clone = copy.copy(self)
        clone._closed = self._closed.copy()  # the only mutable field
        return clone

    def _close(self, index: int, spend: int) -> SpendRateTransition | None:
        """Judge window `index` against the windows before it, then add it to them."""
        total = self.baseline_total()
        n = self.baseline_windows
        anomalous = (
            total is not None
            and total >= self.minimum_baseline_nanos * n
            # spend > factor * total / n, in integers
            and spend * n * self._factor_den > self._factor_num * total
        )
        self._push(spend)
        was = self.anomalous
        self.anomalous = anomalous
        if anomalous == was:
            return None
        assert total is not None  # an anomaly needs a baseline, so either side has one
        start = index * self.window_ms
        if anomalous:
            return AnomalyStarted(start, spend, total // n)
        return AnomalyEnded(start, spend, total // n)

    def _push(self, spend: int) -> None:
        self._closed.put(self._next, spend)
        self._next = (self._next + 1) % self.baseline_windows
        if self._closed_count < self.baseline_windows:
            self._closed_count += 1


# --- RapidConsumption ---


@dataclass(frozen=True, slots=True)
class RapidConsumptionStarted:
    """Spend over the sliding window went above the threshold, seen at event time `at_ms`."""

    at_ms: int
    spend_nanos: int
    threshold_nanos: int


@dataclass(frozen=True, slots=True)
class RapidConsumptionEnded:
    """Spend over the sliding window is back at or below the threshold, seen at `at_ms`."""

    at_ms: int
    spend_nanos: int
    threshold_nanos: int


RapidTransition = RapidConsumptionStarted | RapidConsumptionEnded


@dataclass(slots=True)
class RapidConsumption:
    """More than `fraction` of a budget's `limit_nanos` spent within `window_ms` (module
    docstring). Mutable, updated in place; `copy()` gives an independent one."""

    limit_nanos: int
    fraction: float | Decimal = DEFAULT_RAPID_FRACTION
    window_ms: int = DEFAULT_RAPID_WINDOW_MS
    bucket_ms: int = DEFAULT_RAPID_BUCKET_MS
    threshold_nanos: int = field(default=0, init=False)
    active: bool = field(default=False, init=False)
    late_events: int = field(default=0, init=False)
    late_nanos: int = field(default=0, init=False)
    _ring: SliceRing = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("RapidConsumption", "limit_nanos", self.limit_nanos, 0)
        num, den = exact_ratio("RapidConsumption", "fraction", self.fraction)
        self.threshold_nanos = num * self.limit_nanos // den
        check_whole_buckets(
            "RapidConsumption", "window_ms", self.window_ms, "bucket_ms", self.bucket_ms
        )
        self._ring = SliceRing(self.window_ms, self.bucket_ms)

    def spend_nanos(self) -> int:
        """Spend in the sliding window ending at the newest event time."""
        return self._ring.total

    def accepts(self, ts_ms: int) -> bool:
        return self._ring.in_window(ts_ms)

    def add(self, ts_ms: int, nanos: int) -> tuple[RapidTransition, ...]:
        """Count `nanos` at event time `ts_ms` (older slices leave first if it is newer)."""
        _check_nanos(nanos)
        if not self._ring.add(ts_ms, nanos):
            self.late_events += 1
            self.late_nanos += nanos
        return self._check()

    def advance(self, ts_ms: int) -> tuple[RapidTransition, ...]:
        """Event time is `ts_ms` (a clock event): spend that left the window may end it."""
        self._ring.advance(ts_ms)
        return self._check()

    def ends_at(self) -> int | None:
        """Earliest event time at which, with no further spend, it is no longer active; None
        when it is not."""
        return self._ring.at_or_below_at(self.threshold_nanos)

    def copy(self) -> RapidConsumption:
        clone = copy.copy(self)
        clone._ring = self._ring.copy()  # the only mutable field
        return clone

    def _check(self) -> tuple[RapidTransition, ...]:
        spend = self._ring.total
        active = spend > self.threshold_nanos
        if active == self.active:
            return ()
        self.active = active
        at_ms = self._ring.watermark_ms
        assert at_ms is not None  # a change needs spend, so something was recorded
        if active:
            return (RapidConsumptionStarted(at_ms, spend, self.threshold_nanos),)
        return (RapidConsumptionEnded(at_ms, spend, self.threshold_nanos),)
