"""A budget's spend by period and the thresholds crossed in it (rules: `workers.kernels.budget`,
"Period membership" and "Thresholds").

`BudgetLedger` keeps one spend window beside its rate limits and detectors, whichever kind of
period its budget has, behind one interface (`SpendWindow`):
- `CalendarSpend`: calendar periods in the budget's time zone; the period before the current
  one stays open for late spend until `grace_ms` after its end, then closes;
- `RollingSpend`: a rolling window (`rolling_sum.RollingSum`, 60 buckets of the window).

Thresholds are integers of the limits' own units, computed once per budget (`LimitLevel`,
`ThresholdLevel`): reaching one is an integer comparison, no division on the hot path.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple, Protocol

from workers.kernels.budget_config import Threshold
from workers.kernels.budget_outputs import (
    BudgetOutput,
    PeriodClosed,
    PeriodRolled,
    ThresholdCrossed,
)
from workers.kernels.budget_periods import Period, PeriodSpec, accepts, period_of
from workers.kernels.rolling_sum import RollingSum

ROLLING_BUCKETS = 60
"""A rolling budget's window in buckets: 1/60 of the window of resolution (a rolling day in
24-minute buckets) keeps a split budget's key near 1 KB."""


class LimitLevel(NamedTuple):
    """Where a percent of the limits lies, in the limits' own integers: reached when
    nanos >= `nanos` or tokens >= `tokens` (None: that limit is not set)."""

    nanos: int | None
    tokens: int | None


class ThresholdLevel(NamedTuple):
    threshold: Threshold
    at: LimitLevel
    halt: LimitLevel
    """Where a halt threshold stops calls: its percent x burst_allowance."""

    # `reached` takes either kind of level.
    @property
    def nanos(self) -> int | None:
        return self.at.nanos

    @property
    def tokens(self) -> int | None:
        return self.at.tokens


def limit_level(limit_nanos: int | None, limit_tokens: int | None, percent: Decimal) -> LimitLevel:
    """The smallest integer amounts at or above `percent` % of each limit (exact: the
    comparison `amount x 100 >= limit x percent` without division on the hot path)."""
    share = Fraction(percent) / 100

    def ceil(limit: int | None) -> int | None:
        return None if limit is None else -(-limit * share.numerator // share.denominator)

    return LimitLevel(ceil(limit_nanos), ceil(limit_tokens))


def reached(level: LimitLevel | ThresholdLevel, nanos: int, tokens: int) -> bool:
    at_nanos, at_tokens = level.nanos, level.tokens
    return (at_nanos is not None and nanos >= at_nanos) or (
        at_tokens is not None and tokens >= at_tokens
    )


class PeriodTotals:
    """Spend of one calendar period (the current one, or the one before in its grace)."""

    __slots__ = ("crossed", "nanos", "period", "requests", "tokens")

    def __init__(self, period: Period, nanos: int = 0) -> None:
        self.period = period
        self.nanos = nanos
        self.tokens = 0
        self.requests = 0
        self.crossed: list[Decimal] = []

    def copy(self) -> PeriodTotals:
        clone = PeriodTotals(self.period, self.nanos)
        clone.tokens, clone.requests, clone.crossed = self.tokens, self.requests, self.crossed[:]
        return clone


class SpendWindow(Protocol):
    """What a ledger asks of its spend, calendar or rolling."""

    @property
    def spent_nanos(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def crossed(self) -> tuple[Decimal, ...]: ...
    @property
    def current(self) -> PeriodTotals | None: ...
    @property
    def previous(self) -> PeriodTotals | None: ...

    def add(
        self, ts_ms: int, nanos: int, tokens: int, requests: int, outputs: list[BudgetOutput]
    ) -> bool:
        """Count spend at `ts_ms` (after `advance` to it); False, counting nothing, when it is
        too late for every period still open."""
        ...

    def advance(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        """Event time reached `ts_ms` (later than any before): periods roll and close, the
        window slides."""
        ...

    def due_ms(self) -> int | None:
        """The earliest event time at which `advance` changes something; None: only spend."""
        ...

    def period(self, watermark_ms: int | None) -> Period | None:
        """The current period (rolling: the window ending at the watermark)."""
        ...

    def tumbling_period(self, ts_ms: int) -> Period:
        """The period a tripwire interval at `ts_ms` is measured in."""
        ...

    def copy(self) -> SpendWindow: ...


class CalendarSpend:
    """Spend of the current calendar period and of the one before while in its grace."""

    __slots__ = ("_levels", "_opening_nanos", "current", "previous", "spec")

    def __init__(
        self, spec: PeriodSpec, levels: tuple[ThresholdLevel, ...], opening_nanos: int
    ) -> None:
        """`spec`: the budget's PeriodSpec, shared by all its splits (it memoises the current
        period, so one per budget keeps period lookups a range check)."""
        self.spec = spec
        self._levels = levels
        self._opening_nanos = opening_nanos
        """The seeds' opening spend: counted in the first period the ledger sees."""
        self.current: PeriodTotals | None = None
        self.previous: PeriodTotals | None = None

    @property
    def spent_nanos(self) -> int:
        return 0 if self.current is None else self.current.nanos

    @property
    def tokens(self) -> int:
        return 0 if self.current is None else self.current.tokens

    @property
    def crossed(self) -> tuple[Decimal, ...]:
        return () if self.current is None else tuple(self.current.crossed)

    def add(
        self, ts_ms: int, nanos: int, tokens: int, requests: int, outputs: list[BudgetOutput]
    ) -> bool:
        if self.current is None:
            self.current = PeriodTotals(period_of(self.spec, ts_ms), self._opening_nanos)
        totals = self._totals_for(ts_ms)
        if totals is None:
            return False
        totals.nanos += nanos
        totals.tokens += tokens
        totals.requests += requests
        self._thresholds(totals, ts_ms, outputs)
        return True

    def advance(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        if self.current is None:
            return
        if ts_ms >= self.current.period.end_ms:
            self._roll(ts_ms, outputs)
        previous = self.previous
        if previous is not None and not accepts(self.spec, previous.period, ts_ms):
            outputs.append(_closed(ts_ms, previous))
            self.previous = None

    def due_ms(self) -> int | None:
        if self.current is None:
            return None
        due = self.current.period.end_ms
        if self.previous is not None:
            due = min(due, self.previous.period.end_ms + self.spec.grace_ms)
        return due

    def period(self, watermark_ms: int | None) -> Period | None:
        return None if self.current is None else self.current.period

    def tumbling_period(self, ts_ms: int) -> Period:
        return period_of(self.spec, ts_ms)

    def copy(self) -> CalendarSpend:
        clone = CalendarSpend(self.spec, self._levels, self._opening_nanos)
        clone.current = None if self.current is None else self.current.copy()
        clone.previous = None if self.previous is None else self.previous.copy()
        return clone

    def _totals_for(self, ts_ms: int) -> PeriodTotals | None:
        current = self.current
        if current is not None and current.period.contains(ts_ms):
            return current
        previous = self.previous
        if previous is not None and previous.period.contains(ts_ms):
            return previous  # still in its grace, or advance() would have closed it
        return None

    def _roll(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        old = self.current
        assert old is not None
        if self.previous is not None:  # its grace ran out with this rollover at the latest
            outputs.append(_closed(ts_ms, self.previous))
        self.previous = old
        self.current = PeriodTotals(period_of(self.spec, ts_ms))
        outputs.append(
            PeriodRolled(ts_ms, old.period.label, self.current.period.label, tuple(old.crossed))
        )

    def _thresholds(self, totals: PeriodTotals, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        # Spend only grows within a period and thresholds are sorted, so the crossed ones are
        # always a prefix: only the next one needs a look (integer comparisons, no division).
        levels = self._levels
        crossed = totals.crossed
        while len(crossed) < len(levels):
            level = levels[len(crossed)]
            if not reached(level, totals.nanos, totals.tokens):
                return
            crossed.append(level.threshold.percent)
            outputs.append(
                ThresholdCrossed(
                    ts_ms, totals.period.label, level.threshold.percent, level.threshold.action,
                    totals.nanos, totals.tokens,
                )
            )  # fmt: skip


class RollingSpend:
    """Spend over the last `rolling_ms` of event time; a threshold re-arms when the window
    slides back below it."""

    __slots__ = ("_crossed", "_levels", "_sum")
    current: None = None  # no calendar periods
    previous: None = None

    def __init__(self, rolling_ms: int, levels: tuple[ThresholdLevel, ...]) -> None:
        bucket = max(rolling_ms // ROLLING_BUCKETS, 1)
        self._sum = RollingSum(rolling_ms // bucket * bucket, bucket)
        self._levels = levels
        self._crossed: list[Decimal] = []

    @property
    def spent_nanos(self) -> int:
        return self._sum.nanos

    @property
    def tokens(self) -> int:
        return self._sum.tokens

    @property
    def crossed(self) -> tuple[Decimal, ...]:
        return tuple(self._crossed)

    def add(
        self, ts_ms: int, nanos: int, tokens: int, requests: int, outputs: list[BudgetOutput]
    ) -> bool:
        if not self._sum.add(ts_ms, nanos, tokens):
            return False
        self._thresholds(ts_ms, outputs)
        return True

    def advance(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        self._sum.advance(ts_ms)
        self._thresholds(ts_ms, outputs)

    def due_ms(self) -> int | None:
        # The window slides with every millisecond, but its sum (hence thresholds and the
        # action) changes only when a bucket holding spend leaves it: a ledger per user of a
        # rolling budget is not due at every tick.
        return self._sum.next_change_ms()

    def period(self, watermark_ms: int | None) -> Period | None:
        if watermark_ms is None:
            return None
        return Period(watermark_ms - self._sum.window_ms + 1, watermark_ms + 1, "rolling")

    def tumbling_period(self, ts_ms: int) -> Period:
        window = self._sum.window_ms
        start = ts_ms // window * window
        return Period(start, start + window, "rolling")

    def copy(self) -> RollingSpend:
        clone = RollingSpend.__new__(RollingSpend)
        clone._sum = self._sum.copy()
        clone._levels = self._levels
        clone._crossed = self._crossed[:]
        return clone

    def _thresholds(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        nanos, tokens = self._sum.nanos, self._sum.tokens
        crossed = self._crossed
        for level in self._levels:
            percent = level.threshold.percent
            hit = reached(level, nanos, tokens)
            if hit and percent not in crossed:
                crossed.append(percent)
                outputs.append(
                    ThresholdCrossed(
                        ts_ms, "rolling", percent, level.threshold.action, nanos, tokens
                    )
                )
            elif not hit and percent in crossed:
                crossed.remove(percent)  # re-armed: the window slid below it


def _closed(at_ms: int, totals: PeriodTotals) -> PeriodClosed:
    period = totals.period
    return PeriodClosed(
        at_ms, period.label, period.start_ms, period.end_ms, totals.nanos, totals.tokens,
        totals.requests,
    )  # fmt: skip
