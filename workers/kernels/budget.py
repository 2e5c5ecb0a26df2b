"""Budget kernel (DESIGN §6, issue 4): one budget state, `spend` / `advance` -> outputs.

Pure and deterministic (no I/O, no clock): time is the event time of spends and clock ticks.
A `BudgetLedger` is the state of one budget key (a budget, or one split of it) and is updated
in place by the caller that owns it; `copy()` gives an independent one.

Definitions (README, "Budgets"):
- **Period membership** by event time: calendar periods in the budget's time zone
  (`budget_periods`), or a rolling window (`RollingSum`); `budget_spend` keeps either. Entering
  a new period starts it at zero (`PeriodRolled`; its thresholds re-arm). The period before
  stays open for late spend until `grace_ms` after its end, then closes with its final total
  (`PeriodClosed`); spend for anything older is `LateSpend` (counted and audited, never
  added).
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
from workers.kernels.budget_config import BudgetConfig, ThresholdAction
from workers.kernels.budget_outputs import (
    ActionChanged,
    ApprovalExceeded,
    BudgetOutput,
    LateSpend,
)
from workers.kernels.budget_periods import Period, PeriodSpec
from workers.kernels.budget_spend import (
    CalendarSpend,
    LimitLevel,
    PeriodTotals,
    RollingSpend,
    SpendWindow,
    ThresholdLevel,
    limit_level,
    reached,
)
from workers.kernels.budget_tripwire import Tripwire
from workers.kernels.rate_limit import SlidingRateLimit
from workers.kernels.rolling_sum import to_nanos
from workers.kernels.spend_anomaly import RapidConsumption, SpendRateAnomaly

_ALLOW, _THROTTLE, _HALT = BudgetAction.ALLOW, BudgetAction.THROTTLE, BudgetAction.HALT
_RESTRICTIVENESS = {_ALLOW: 0, _THROTTLE: 1, _HALT: 2}


class BudgetLedger:
    """The state of one budget key; `spend` and `advance` update it and return outputs."""

    __slots__ = (
        "_approval_nanos",
        "_levels",
        "_limit_nanos",
        "_stop",
        "action",
        "anomaly",
        "config",
        "decided_by",
        "key",
        "late_events",
        "rapid",
        "rate_requests",
        "rate_tokens",
        "spending",
        "tripwire",
        "watermark_ms",
    )

    def __init__(self, config: BudgetConfig, key: str, spec: PeriodSpec | None = None) -> None:
        """`spec`: the budget's PeriodSpec, shared by all its splits (it memoises the current
        period, so one per budget keeps period lookups a range check)."""
        self.config = config
        self.key = key
        limits = _limits(config)
        self._limit_nanos = limits.limit_nanos
        self._approval_nanos = limits.approval_nanos
        self._levels = limits.levels
        self._stop = limits.stop
        self.spending: SpendWindow
        if config.period is BudgetPeriod.ROLLING:
            assert config.rolling_ms is not None  # BudgetConfig validates it
            self.spending = RollingSpend(config.rolling_ms, limits.levels)
        else:
            spec = spec or period_spec(config)
            self.spending = CalendarSpend(spec, limits.levels, limits.opening_nanos)
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
        if not self.spending.add(ts_ms, nanos, tokens, requests, outputs):
            self.late_events += 1
            outputs.append(LateSpend(self.watermark_ms or ts_ms, ts_ms, nanos, tokens))
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
            outputs.extend(self.tripwire.record(ts_ms, amount, self.spending.tumbling_period))
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
        self.spending.advance(ts_ms, outputs)
        for limiter in (self.rate_requests, self.rate_tokens):
            if limiter is not None:
                limiter.advance(ts_ms)
        if self.anomaly is not None:
            outputs.extend(self.anomaly.advance(ts_ms))
        if self.rapid is not None:
            outputs.extend(self.rapid.advance(ts_ms))
        if self.tripwire is not None:
            outputs.extend(self.tripwire.advance(ts_ms, self.spending.tumbling_period))
        return outputs

    def due_ms(self) -> int | None:
        """The earliest event time at which `advance` can change this ledger (a period ends,
        a grace runs out, a rolling window's spend leaves it, a detection window or tripwire
        interval closes, rate capacity returns, a rapid-consumption episode ends); None: only
        spend can change it. Before it, `advance` makes no output and leaves the action as it
        is."""
        if self.watermark_ms is None:
            return None
        dues: list[int] = []
        spending_due = self.spending.due_ms()
        if spending_due is not None:
            dues.append(spending_due)
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
        return self.spending.period(self.watermark_ms)

    @property
    def current(self) -> PeriodTotals | None:
        """The current calendar period's spend (None before any, and for a rolling budget)."""
        return self.spending.current

    @property
    def previous(self) -> PeriodTotals | None:
        """The calendar period before, while it is open for late spend (its grace)."""
        return self.spending.previous

    @property
    def spent_nanos(self) -> int:
        return self.spending.spent_nanos

    @property
    def tokens(self) -> int:
        return self.spending.tokens

    @property
    def crossed(self) -> tuple[Decimal, ...]:
        return self.spending.crossed

    def utilization(self) -> Fraction:
        """max(spent / limit_usd, tokens / limit_tokens) as an exact fraction."""
        return self._utilization(self.spent_nanos, self.tokens)

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
                elif threshold.action is ThresholdAction.HALT and reached(
                    level.halt, nanos, tokens
                ):
                    consider(_HALT, f"threshold:{threshold.percent}")
            if reached(self._stop, nanos, tokens):
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


class _Limits(NamedTuple):
    """A budget's amounts as integers, computed once per budget (not per split)."""

    limit_nanos: int | None
    opening_nanos: int
    approval_nanos: int | None
    levels: tuple[ThresholdLevel, ...]
    stop: LimitLevel
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
        limit_level(limit_nanos, config.limit_tokens, 100 * config.burst_allowance),
    )


def _levels(config: BudgetConfig, limit_nanos: int | None) -> tuple[ThresholdLevel, ...]:
    burst = config.burst_allowance
    return tuple(
        ThresholdLevel(
            threshold,
            limit_level(limit_nanos, config.limit_tokens, threshold.percent),
            limit_level(limit_nanos, config.limit_tokens, threshold.percent * burst),
        )
        for threshold in config.thresholds
    )


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
