"""The seeds' budget tripwire as a pure kernel: check intervals, breaches, trip, recovery.

The exact definitions are `TripwireConfig`'s (workers/kernels/budget_config.py): the budget's
period is cut into `check_interval_ms` intervals from its start (the last one shorter if need
be); an interval is checked once event time reaches its end, with whatever was spent in it
(zero if nothing); plan = limit x interval length / period length; overspend = (spend - plan) /
plan x 100 %. A breach is overspend > breach threshold; `consecutive_breach_limit` breaches in a
row trip the wire. While tripped, an interval with overspend <= recovery threshold is a normal
operation; `consecutive_normal_operations` of them in a row, and at least
`time_since_last_breach_ms` since the end of the last breaching interval, recover it.

Amounts are integers in one unit (nano-dollars, or tokens for token-only budgets) and every
comparison is exact (fractions, no floats). Spend recorded for an interval that was already
checked (a late event) cannot change that verdict: it is counted in `late_spend` and the
budget ledger still counts it in the period's total.

A long gap of event time is a run of zero-spend intervals. Zero spend is never a breach and
always a normal operation, so an untripped wire jumps straight to the current interval (a day
of 15-minute intervals would otherwise be 96 checks for one clock tick); a tripped one checks
them one by one until it recovers, which its recovery conditions bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from workers.kernels.budget_config import TripwireConfig
from workers.kernels.budget_periods import Period

PeriodOf = Callable[[int], Period]


@dataclass(frozen=True, slots=True)
class IntervalCheck:
    """The numbers that decided one interval (the evidence of a trip or a recovery)."""

    start_ms: int
    end_ms: int
    spend: int
    plan: Fraction
    overspend_pct: float


@dataclass(frozen=True, slots=True)
class TripwireTripped:
    at_ms: int
    check: IntervalCheck
    consecutive_breaches: int
    parameters: Mapping[str, str]
    """The downgrade to apply (the policy's downgrade_parameters)."""


@dataclass(frozen=True, slots=True)
class TripwireRecovered:
    at_ms: int
    check: IntervalCheck
    normal_operations: int
    since_last_breach_ms: int
    parameters: Mapping[str, str]
    """The parameters the downgrade changed, now to be restored."""


TripwireOutput = TripwireTripped | TripwireRecovered


class Tripwire:
    """One budget's tripwire. `limit` is the budget's limit in the unit of the amounts."""

    __slots__ = (
        "_breach_factor",
        "_recovery_factor",
        "config",
        "consecutive_breaches",
        "interval_end_ms",
        "interval_spend",
        "interval_start_ms",
        "last_breach_end_ms",
        "late_spend",
        "limit",
        "normal_operations",
        "period_ms",
        "tripped",
    )

    def __init__(self, config: TripwireConfig, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"tripwire limit must be > 0, not {limit}")
        self.config = config
        self.limit = limit
        # spend > plan x (1 + b/100)  <=>  spend > plan x breach_factor
        self._breach_factor = 1 + Fraction(config.breach_threshold_pct) / 100
        self._recovery_factor = 1 + Fraction(config.recovery_threshold_pct) / 100
        self.tripped = False
        self.consecutive_breaches = 0
        self.normal_operations = 0
        self.last_breach_end_ms: int | None = None
        self.interval_start_ms: int | None = None
        self.interval_end_ms = 0
        self.period_ms = 0
        self.interval_spend = 0
        self.late_spend = 0

    def record(self, ts_ms: int, amount: int, period_of: PeriodOf) -> list[TripwireOutput]:
        """Spend `amount` at event time `ts_ms`; returns what the intervals it closed decided."""
        outputs = self.advance(ts_ms, period_of)
        if self.interval_start_ms is not None and ts_ms < self.interval_start_ms:
            self.late_spend += amount
        else:
            self.interval_spend += amount
        return outputs

    def advance(self, ts_ms: int, period_of: PeriodOf) -> list[TripwireOutput]:
        """Event time reached `ts_ms`: check every interval that ended by then."""
        outputs: list[TripwireOutput] = []
        if self.interval_start_ms is None:
            self._enter(ts_ms, period_of)
            return outputs
        while ts_ms >= self.interval_end_ms:
            output = self._check()
            if output is not None:
                outputs.append(output)
            if not self.tripped:
                # Every interval from here to ts_ms is empty (events arrive in order; late
                # ones are not interval spend): none is a breach, and an untripped wire has
                # nothing else to decide. Jump instead of checking each.
                self._enter(self.interval_end_ms, period_of)
                if ts_ms >= self.interval_end_ms:  # that one ended too, empty: no breach
                    self.consecutive_breaches = 0
                    self._enter(ts_ms, period_of)
                break
            self._enter(self.interval_end_ms, period_of)
        return outputs

    def copy(self) -> Tripwire:
        clone = Tripwire.__new__(Tripwire)
        for name in Tripwire.__slots__:
            setattr(clone, name, getattr(self, name))
        return clone

    # --- internals ---

    def _enter(self, ts_ms: int, period_of: PeriodOf) -> None:
        """Make the interval holding `ts_ms` current (empty)."""
        period = period_of(ts_ms)
        step = self.config.check_interval_ms
        start = period.start_ms + (ts_ms - period.start_ms) // step * step
        self.interval_start_ms = start
        self.interval_end_ms = min(start + step, period.end_ms)
        self.period_ms = period.duration_ms
        self.interval_spend = 0

    def _check(self) -> TripwireOutput | None:
        assert self.interval_start_ms is not None
        start, end, spend = self.interval_start_ms, self.interval_end_ms, self.interval_spend
        plan = Fraction(self.limit * (end - start), self.period_ms)
        check = IntervalCheck(start, end, spend, plan, float((spend - plan) / plan * 100))
        config = self.config
        if spend > plan * self._breach_factor:
            self.consecutive_breaches += 1
            self.normal_operations = 0
            self.last_breach_end_ms = end
            if not self.tripped and self.consecutive_breaches >= config.consecutive_breach_limit:
                self.tripped = True
                return TripwireTripped(
                    end, check, self.consecutive_breaches, config.downgrade_parameters
                )
            return None
        self.consecutive_breaches = 0
        if not self.tripped:
            return None
        if spend > plan * self._recovery_factor:
            self.normal_operations = 0  # in the hysteresis band: not yet normal
            return None
        self.normal_operations += 1
        since_breach = end - (self.last_breach_end_ms or end)
        if (
            self.normal_operations >= config.consecutive_normal_operations
            and since_breach >= config.time_since_last_breach_ms
        ):
            self.tripped = False
            normal, self.normal_operations = self.normal_operations, 0
            return TripwireRecovered(end, check, normal, since_breach, config.downgrade_parameters)
        return None
