"""Budget kernel (DESIGN §6, issue 4): one budget state, `spend` / `advance` -> outputs.

Pure and deterministic (no I/O, no clock): time is the event time of spends and clock ticks.
A `BudgetLedger` is the state of one budget key (a budget, or one split of it) and is updated
in place by the caller that owns it; `copy()` gives an independent one.

Definitions (README, "Budgets"):
- **Period membership** by event time: calendar periods in the budget's time zone
  (`budget_periods`), or a rolling window (`RollingSum`). Entering a new period starts it at
  zero (`PeriodRolled`; its thresholds re-arm). The period before stays open for late spend
  until `grace_ms` after its end, then closes with its final total (`PeriodClosed`); spend for
  anything older is `LateSpend` (counted and audited, never added).
- The seeds' `opening_spend_usd` counts in the first period the ledger sees.
- **Utilisation** = max(spent / limit_usd, tokens / limit_tokens), exact.
- **Thresholds** fire once per threshold and period (`ThresholdCrossed`), at their own percent;
  in a rolling budget a threshold re-arms when utilisation falls back below it.
- **Action** (what gateways do now), the most restrictive of: for hard budgets only, crossed
  throttle thresholds (THROTTLE), crossed halt thresholds once utilisation also reaches
  percent x burst_allowance, and the implicit hard stop at 100 % x burst_allowance (HALT) -- soft
  budgets only alert; the rate limits (THROTTLE while exceeded); an active rapid-consumption
  episode whose policy action is throttle. Ties keep the first in that order.
- Rate limits, anomaly detection, rapid consumption and the tripwire are their own kernels
  (`rate_limit`, `spend_anomaly`, `budget_tripwire`), fed from here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from schemas.state import BudgetAction, BudgetPeriod
from workers.kernels.budget_config import BudgetConfig, Threshold, ThresholdAction
from workers.kernels.budget_outputs import (
    ActionChanged,
    ApprovalExceeded,
    BudgetOutput,
    LateSpend,
    PeriodClosed,
    PeriodRolled,
    ThresholdCrossed,
)
from workers.kernels.budget_periods import Period, PeriodSpec, accepts, period_of
from workers.kernels.budget_tripwire import Tripwire
from workers.kernels.rate_limit import SlidingRateLimit
from workers.kernels.rolling_sum import RollingSum, to_nanos
from workers.kernels.spend_anomaly import RapidConsumption, SpendRateAnomaly

_ALLOW, _THROTTLE, _HALT = BudgetAction.ALLOW, BudgetAction.THROTTLE, BudgetAction.HALT
_RESTRICTIVENESS = {_ALLOW: 0, _THROTTLE: 1, _HALT: 2}
# A rolling budget's window in buckets: 1/60 of the window of resolution (a rolling day in
# 24-minute buckets) keeps a split budget's key near 1 KB.
_ROLLING_BUCKETS = 60


class _PeriodTotals:
    """Spend of one calendar period (the current one, or the one before in its grace)."""

    __slots__ = ("crossed", "nanos", "period", "requests", "tokens")

    def __init__(self, period: Period, nanos: int = 0) -> None:
        self.period = period
        self.nanos = nanos
        self.tokens = 0
        self.requests = 0
        self.crossed: list[Decimal] = []

    def copy(self) -> _PeriodTotals:
        clone = _PeriodTotals(self.period, self.nanos)
        clone.tokens, clone.requests, clone.crossed = self.tokens, self.requests, self.crossed[:]
        return clone


class BudgetLedger:
    """The state of one budget key; `spend` and `advance` update it and return outputs."""

    __slots__ = (
        "_approval_nanos",
        "_levels",
        "_limit_nanos",
        "_opening_nanos",
        "_stop",
        "action",
        "anomaly",
        "config",
        "current",
        "decided_by",
        "key",
        "late_events",
        "previous",
        "rapid",
        "rate_requests",
        "rate_tokens",
        "rolling",
        "rolling_crossed",
        "spec",
        "tripwire",
        "watermark_ms",
    )

    def __init__(self, config: BudgetConfig, key: str, spec: PeriodSpec | None = None) -> None:
        """`spec`: the budget's PeriodSpec, shared by all its splits (it memoises the current
        period, so one per budget keeps period lookups a range check)."""
        self.config = config
        self.key = key
        self.spec = spec or period_spec(config)
        limits = _limits(config)
        self._limit_nanos = limits.limit_nanos
        self._opening_nanos = limits.opening_nanos
        self._approval_nanos = limits.approval_nanos
        self._levels = limits.levels
        self._stop = limits.stop
        self.current: _PeriodTotals | None = None
        self.previous: _PeriodTotals | None = None
        self.rolling: RollingSum | None = None
        self.rolling_crossed: list[Decimal] = []
        if config.period is BudgetPeriod.ROLLING:
            assert config.rolling_ms is not None  # BudgetConfig validates it
            bucket = max(config.rolling_ms // _ROLLING_BUCKETS, 1)
            self.rolling = RollingSum(config.rolling_ms // bucket * bucket, bucket)
        self.watermark_ms: int | None = None
        self.late_events = 0
        self.action = _ALLOW
        self.decided_by: str | None = None
        self.rate_requests, self.rate_tokens = _rate_limits(config)
        self.anomaly = _anomaly(config)
        self.rapid = _rapid(config, self._limit_nanos)
        self.tripwire = _tripwire(config, self._limit_nanos)

    # --- events ---

    def spend(
        self, ts_ms: int, nanos: int, tokens: int, requests: int, largest_nanos: int | None = None
    ) -> list[BudgetOutput]:
        """Count spend at event time `ts_ms`: one event's, or several events' sum whose largest
        single cost is `largest_nanos` (the approval limit applies per call)."""
        outputs = self._advance(ts_ms)
        approval = self._approval_nanos
        largest = nanos if largest_nanos is None else largest_nanos
        if approval is not None and largest > approval:
            outputs.append(ApprovalExceeded(ts_ms, largest, approval))
        if self.rolling is not None:
            self._spend_rolling(ts_ms, nanos, tokens, outputs)
        else:
            self._spend_calendar(ts_ms, nanos, tokens, requests, outputs)
        if self.rate_requests is not None and requests:
            self.rate_requests.record(ts_ms, requests)
        if self.rate_tokens is not None and tokens:
            self.rate_tokens.record(ts_ms, tokens)
        if self.anomaly is not None and nanos:
            outputs.extend(self.anomaly.add(ts_ms, nanos))
        if self.rapid is not None and nanos:
            outputs.extend(self.rapid.add(ts_ms, nanos))
        if self.tripwire is not None:
            amount = nanos if self._limit_nanos is not None else tokens
            outputs.extend(self.tripwire.record(ts_ms, amount, self._period_for_tripwire))
        self._decide(ts_ms, outputs)
        return outputs

    def advance(self, ts_ms: int) -> list[BudgetOutput]:
        """Event time reached `ts_ms` (a clock tick, or the next spend): periods roll and close,
        windows slide, and the action follows."""
        outputs = self._advance(ts_ms)
        self._decide(ts_ms, outputs)
        return outputs

    def _advance(self, ts_ms: int) -> list[BudgetOutput]:
        """`advance` without deciding the action (a spend decides once, after counting)."""
        outputs: list[BudgetOutput] = []
        if self.watermark_ms is not None and ts_ms <= self.watermark_ms:
            return outputs
        self.watermark_ms = ts_ms
        if self.rolling is not None:
            self.rolling.advance(ts_ms)
            self._rolling_thresholds(ts_ms, outputs)
        elif self.current is not None:
            if ts_ms >= self.current.period.end_ms:
                self._roll(ts_ms, outputs)
            previous = self.previous
            if previous is not None and not accepts(self.spec, previous.period, ts_ms):
                outputs.append(_closed(ts_ms, previous))
                self.previous = None
        for limiter in (self.rate_requests, self.rate_tokens):
            if limiter is not None:
                limiter.advance(ts_ms)
        if self.anomaly is not None:
            outputs.extend(self.anomaly.advance(ts_ms))
        if self.rapid is not None:
            outputs.extend(self.rapid.advance(ts_ms))
        if self.tripwire is not None:
            outputs.extend(self.tripwire.advance(ts_ms, self._period_for_tripwire))
        return outputs

    def due_ms(self) -> int | None:
        """The earliest event time at which `advance` can change this ledger (a period ends,
        a grace runs out, a detection window or tripwire interval closes, rate capacity
        returns, a rapid-consumption episode ends); None: only spend can change it. Before it,
        `advance` makes no output and leaves the action as it is."""
        if self.watermark_ms is None:
            return None
        dues: list[int] = []
        if self.rolling is not None:
            # The window slides with every millisecond, but its sum (hence thresholds and
            # the action) changes only when a bucket holding spend leaves it: a ledger per
            # user of a rolling budget is not due at every tick.
            change = self.rolling.next_change_ms()
            if change is not None:
                dues.append(change)
        if self.current is not None:
            dues.append(self.current.period.end_ms)
        if self.previous is not None:
            dues.append(self.previous.period.end_ms + self.spec.grace_ms)
        for limiter in (self.rate_requests, self.rate_tokens):
            returns = limiter.capacity_returns_at() if limiter is not None else None
            if returns is not None:
                dues.append(returns)
        anomaly = self.anomaly
        if anomaly is not None and anomaly.window_index is not None:
            dues.append((anomaly.window_index + 1) * anomaly.window_ms)
        rapid_end = self.rapid.ends_at() if self.rapid is not None else None
        if rapid_end is not None:
            dues.append(rapid_end)
        tripwire = self.tripwire
        if tripwire is not None and tripwire.interval_start_ms is not None:
            dues.append(tripwire.interval_end_ms)
        return min(dues, default=None)

    # --- reading ---

    @property
    def period(self) -> Period | None:
        """The current period (for a rolling budget: the window ending at the watermark)."""
        if self.rolling is not None:
            if self.watermark_ms is None:
                return None
            window = self.rolling.window_ms
            return Period(self.watermark_ms - window + 1, self.watermark_ms + 1, "rolling")
        return None if self.current is None else self.current.period

    @property
    def spent_nanos(self) -> int:
        if self.rolling is not None:
            return self.rolling.nanos
        return 0 if self.current is None else self.current.nanos

    @property
    def tokens(self) -> int:
        if self.rolling is not None:
            return self.rolling.tokens
        return 0 if self.current is None else self.current.tokens

    @property
    def crossed(self) -> tuple[Decimal, ...]:
        if self.rolling is not None:
            return tuple(self.rolling_crossed)
        return () if self.current is None else tuple(self.current.crossed)

    def utilization(self) -> Fraction:
        """max(spent / limit_usd, tokens / limit_tokens) as an exact fraction."""
        return self._utilization(self.spent_nanos, self.tokens)

    # --- calendar periods ---

    def _spend_calendar(
        self, ts_ms: int, nanos: int, tokens: int, requests: int, outputs: list[BudgetOutput]
    ) -> None:
        if self.current is None:
            self.current = _PeriodTotals(period_of(self.spec, ts_ms), self._opening_nanos)
        totals = self._totals_for(ts_ms)
        if totals is None:
            self.late_events += 1
            outputs.append(LateSpend(self.watermark_ms or ts_ms, ts_ms, nanos, tokens))
            return
        totals.nanos += nanos
        totals.tokens += tokens
        totals.requests += requests
        self._thresholds(totals, ts_ms, outputs)

    def _totals_for(self, ts_ms: int) -> _PeriodTotals | None:
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
        self.current = _PeriodTotals(period_of(self.spec, ts_ms))
        outputs.append(
            PeriodRolled(ts_ms, old.period.label, self.current.period.label, tuple(old.crossed))
        )

    def _thresholds(self, totals: _PeriodTotals, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        # Spend only grows within a period and thresholds are sorted, so the crossed ones are
        # always a prefix: only the next one needs a look (integer comparisons, no division).
        levels = self._levels
        crossed = totals.crossed
        while len(crossed) < len(levels):
            level = levels[len(crossed)]
            if not _reached(level, totals.nanos, totals.tokens):
                return
            crossed.append(level.threshold.percent)
            outputs.append(
                ThresholdCrossed(
                    ts_ms, totals.period.label, level.threshold.percent, level.threshold.action,
                    totals.nanos, totals.tokens,
                )
            )  # fmt: skip

    # --- rolling windows ---

    def _spend_rolling(
        self, ts_ms: int, nanos: int, tokens: int, outputs: list[BudgetOutput]
    ) -> None:
        assert self.rolling is not None
        if not self.rolling.add(ts_ms, nanos, tokens):
            self.late_events += 1
            outputs.append(LateSpend(self.watermark_ms or ts_ms, ts_ms, nanos, tokens))
            return
        self._rolling_thresholds(ts_ms, outputs)

    def _rolling_thresholds(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        nanos, tokens = self.spent_nanos, self.tokens
        crossed = self.rolling_crossed
        for level in self._levels:
            percent = level.threshold.percent
            reached = _reached(level, nanos, tokens)
            if reached and percent not in crossed:
                crossed.append(percent)
                outputs.append(
                    ThresholdCrossed(
                        ts_ms, "rolling", percent, level.threshold.action, nanos, tokens
                    )
                )
            elif not reached and percent in crossed:
                crossed.remove(percent)  # re-armed: the window slid below it

    # --- the action ---

    def _decide(self, ts_ms: int, outputs: list[BudgetOutput]) -> None:
        action, decided_by = self._action()
        if action is not self.action or decided_by != self.decided_by:
            if action is not self.action:
                outputs.append(ActionChanged(ts_ms, self.action, action, decided_by))
            self.action, self.decided_by = action, decided_by

    def _action(self) -> tuple[BudgetAction, str | None]:
        best, reason = _ALLOW, None

        def consider(action: BudgetAction, why: str) -> None:
            nonlocal best, reason
            if _RESTRICTIVENESS[action] > _RESTRICTIVENESS[best]:
                best, reason = action, why

        config = self.config
        if config.hard:
            nanos, tokens = self.spent_nanos, self.tokens
            crossed = self.crossed
            for level in self._levels:
                threshold = level.threshold
                if threshold.percent not in crossed:
                    continue
                if threshold.action is ThresholdAction.THROTTLE:
                    consider(_THROTTLE, f"threshold:{threshold.percent}")
                elif threshold.action is ThresholdAction.HALT and _reached(
                    level.halt, nanos, tokens
                ):
                    consider(_HALT, f"threshold:{threshold.percent}")
            if _reached(self._stop, nanos, tokens):
                consider(_HALT, "hard_limit")
        if self.rate_requests is not None and self.rate_requests.exceeded():
            consider(_THROTTLE, "rate_limit:requests")
        if self.rate_tokens is not None and self.rate_tokens.exceeded():
            consider(_THROTTLE, "rate_limit:tokens")
        rapid = config.rapid_consumption
        active = self.rapid is not None and self.rapid.active
        if active and rapid is not None and rapid.action is ThresholdAction.THROTTLE:
            consider(_THROTTLE, "rapid_consumption")
        return best, reason

    # --- helpers ---

    def _utilization(self, nanos: int, tokens: int) -> Fraction:
        shares = [Fraction(0)]
        if self._limit_nanos:
            shares.append(Fraction(nanos, self._limit_nanos))
        if self.config.limit_tokens:
            shares.append(Fraction(tokens, self.config.limit_tokens))
        return max(shares)

    def _period_for_tripwire(self, ts_ms: int) -> Period:
        if self.rolling is not None:
            window = self.rolling.window_ms
            start = ts_ms // window * window
            return Period(start, start + window, "rolling")
        return period_of(self.spec, ts_ms)

    def copy(self) -> BudgetLedger:
        clone = BudgetLedger.__new__(BudgetLedger)
        for name in BudgetLedger.__slots__:
            value = getattr(self, name)
            copier: Callable[[], object] | None = getattr(value, "copy", None)
            setattr(clone, name, copier() if copier is not None and name != "config" else value)
        return clone


def period_spec(config: BudgetConfig) -> PeriodSpec:
    return PeriodSpec(
        config.period, config.tz, config.week_start, config.rolling_ms, config.grace_ms
    )


class _Level(NamedTuple):
    """Where a percent of the limits lies, in the limits' own integers: reached when
    nanos >= `nanos` or tokens >= `tokens` (None: that limit is not set)."""

    nanos: int | None
    tokens: int | None


class _ThresholdLevel(NamedTuple):
    threshold: Threshold
    at: _Level
    halt: _Level
    """Where a halt threshold stops calls: its percent x burst_allowance."""

    # `_reached` takes either kind of level.
    @property
    def nanos(self) -> int | None:
        return self.at.nanos

    @property
    def tokens(self) -> int | None:
        return self.at.tokens


def _level(limit_nanos: int | None, limit_tokens: int | None, percent: Decimal) -> _Level:
    """The smallest integer amounts at or above `percent` % of each limit (exact: the
    comparison `amount x 100 >= limit x percent` without division on the hot path)."""
    share = Fraction(percent) / 100

    def ceil(limit: int | None) -> int | None:
        return None if limit is None else -(-limit * share.numerator // share.denominator)

    return _Level(ceil(limit_nanos), ceil(limit_tokens))


class _Limits(NamedTuple):
    """A budget's amounts as integers, computed once per budget (not per split)."""

    limit_nanos: int | None
    opening_nanos: int
    approval_nanos: int | None
    levels: tuple[_ThresholdLevel, ...]
    stop: _Level
    """The implicit hard stop: 100 % x burst_allowance."""


@functools.lru_cache(maxsize=4096)
def _limits(config: BudgetConfig) -> _Limits:
    limit_nanos = to_nanos(config.limit_usd) if config.limit_usd is not None else None
    approval = config.approval_required_above_usd
    return _Limits(
        limit_nanos,
        to_nanos(config.opening_spend_usd),
        None if approval is None else to_nanos(approval),
        _levels(config, limit_nanos),
        _level(limit_nanos, config.limit_tokens, 100 * config.burst_allowance),
    )


def _levels(config: BudgetConfig, limit_nanos: int | None) -> tuple[_ThresholdLevel, ...]:
    burst = config.burst_allowance
    return tuple(
        _ThresholdLevel(
            threshold,
            _level(limit_nanos, config.limit_tokens, threshold.percent),
            _level(limit_nanos, config.limit_tokens, threshold.percent * burst),
        )
        for threshold in config.thresholds
    )


def _reached(level: _Level | _ThresholdLevel, nanos: int, tokens: int) -> bool:
    at_nanos, at_tokens = level.nanos, level.tokens
    return (at_nanos is not None and nanos >= at_nanos) or (
        at_tokens is not None and tokens >= at_tokens
    )


def _closed(at_ms: int, totals: _PeriodTotals) -> PeriodClosed:
    period = totals.period
    return PeriodClosed(
        at_ms, period.label, period.start_ms, period.end_ms, totals.nanos, totals.tokens,
        totals.requests,
    )  # fmt: skip


def _rate_limits(config: BudgetConfig) -> tuple[SlidingRateLimit | None, SlidingRateLimit | None]:
    limits = config.rate_limits
    if limits is None:
        return None, None
    burst = Fraction(config.burst_allowance)

    def limiter(per_window: int | None) -> SlidingRateLimit | None:
        if per_window is None:
            return None
        return SlidingRateLimit(int(per_window * burst), limits.window_ms)

    return limiter(limits.requests_per_minute), limiter(limits.tokens_per_minute)


def _anomaly(config: BudgetConfig) -> SpendRateAnomaly | None:
    anomaly = config.anomaly
    if anomaly is None:
        return None
    return SpendRateAnomaly(anomaly.detection_window_ms, anomaly.baseline_windows, anomaly.factor)


def _rapid(config: BudgetConfig, limit_nanos: int | None) -> RapidConsumption | None:
    rapid = config.rapid_consumption
    if rapid is None or not limit_nanos:
        return None
    return RapidConsumption(limit_nanos, rapid.fraction, rapid.window_ms)


def _tripwire(config: BudgetConfig, limit_nanos: int | None) -> Tripwire | None:
    if config.tripwire is None:
        return None
    limit = limit_nanos if limit_nanos is not None else config.limit_tokens
    return None if not limit else Tripwire(config.tripwire, limit)
