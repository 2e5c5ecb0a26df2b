"""The budget ledger: periods, exact money, thresholds, actions, grace, rate limits, rolling."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.state import BudgetAction, BudgetPeriod
from workers.kernels.budget import BudgetLedger
from workers.kernels.budget_config import (
    BudgetConfig,
    RateLimits,
    Threshold,
    ThresholdAction,
    TripwireConfig,
)
from workers.kernels.budget_outputs import (
    ActionChanged,
    LateSpend,
    PeriodClosed,
    PeriodRolled,
    ThresholdCrossed,
)
from workers.kernels.budget_periods import PeriodSpec, period_of
from workers.kernels.budget_tripwire import TripwireTripped

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z
USD = 1_000_000_000  # nano-dollars


def budget(**overrides: Any) -> BudgetConfig:
    fields: dict[str, Any] = {
        "budget_id": "bud.test",
        "period": BudgetPeriod.DAILY,
        "grace_ms": HOUR,
        "limit_usd": Decimal(100),
        "thresholds": (
            Threshold.of(Decimal(50), ThresholdAction.NOTIFY),
            Threshold.of(Decimal(80), ThresholdAction.NOTIFY),
            Threshold.of(Decimal(95), ThresholdAction.THROTTLE),
            Threshold.of(Decimal(100), ThresholdAction.HALT),
        ),
        "hard": True,
    }
    if not overrides.get("hard", True) and "thresholds" not in overrides:
        # A soft budget cannot halt: the same percents, the last one escalates instead.
        *first, _ = fields["thresholds"]
        fields["thresholds"] = (*first, Threshold.of(Decimal(100), ThresholdAction.ESCALATE))
    fields.update(overrides)
    return BudgetConfig(**fields)


def spend(ledger: BudgetLedger, ts_ms: int, usd: float, tokens: int = 0) -> list[Any]:
    return ledger.spend(ts_ms, round(usd * USD), tokens, 1)


def of_type(outputs: list[Any], kind: type) -> list[Any]:
    return [o for o in outputs if isinstance(o, kind)]


def test_a_million_hundredths_of_a_cent_sum_to_exactly_100_usd() -> None:
    ledger = BudgetLedger(budget(thresholds=(), hard=False, limit_usd=Decimal(1000)), "k")
    nanos = 100_000  # $0.0001
    for n in range(1_000_000):
        ledger.spend(T0 + n // 100, nanos, 0, 1)
    assert ledger.spent_nanos == 100 * USD


def test_each_threshold_fires_once_per_period_and_re_arms_after_rollover() -> None:
    ledger = BudgetLedger(budget(hard=False), "k")
    outputs: list[Any] = []
    for n in range(12):
        outputs += spend(ledger, T0 + n * MIN, 10)  # 10, 20, ... 120 USD
    assert [o.percent for o in of_type(outputs, ThresholdCrossed)] == [50, 80, 95, 100]
    rolled = ledger.advance(T0 + DAY)
    [roll] = of_type(rolled, PeriodRolled)
    assert (roll.old_label, roll.new_label) == ("2026-11-18", "2026-11-19")
    assert roll.crossed == (50, 80, 95, 100)  # their alerts resolve
    again = spend(ledger, T0 + DAY + MIN, 60)
    assert [o.percent for o in of_type(again, ThresholdCrossed)] == [50]


def test_a_soft_budget_only_alerts() -> None:
    ledger = BudgetLedger(budget(hard=False), "k")
    outputs = spend(ledger, T0, 150)
    assert len(of_type(outputs, ThresholdCrossed)) == 4
    assert of_type(outputs, ActionChanged) == []
    assert ledger.action is BudgetAction.ALLOW


def test_a_hard_budget_throttles_then_halts_after_its_burst_allowance() -> None:
    ledger = BudgetLedger(budget(burst_allowance=Decimal("1.2")), "k")
    changes = of_type(spend(ledger, T0, 96), ActionChanged)
    assert [(c.to_action, c.decided_by) for c in changes] == [
        (BudgetAction.THROTTLE, "threshold:95")
    ]
    assert of_type(spend(ledger, T0 + 1, 10), ActionChanged) == []  # 106 %: still throttled
    [halt] = of_type(spend(ledger, T0 + 2, 14), ActionChanged)  # 120 % = 100 % x 1.2
    assert (halt.to_action, halt.decided_by) == (BudgetAction.HALT, "threshold:100")
    [back] = of_type(ledger.advance(T0 + DAY), ActionChanged)  # a new period starts at zero
    assert back.to_action is BudgetAction.ALLOW


def test_without_a_halt_threshold_a_hard_budget_stops_at_its_limit() -> None:
    ledger = BudgetLedger(budget(thresholds=()), "k")
    [halt] = of_type(spend(ledger, T0, 100), ActionChanged)
    assert (halt.to_action, halt.decided_by) == (BudgetAction.HALT, "hard_limit")


def test_late_spend_counts_in_its_period_during_the_grace_then_is_audited() -> None:
    ledger = BudgetLedger(budget(hard=False), "k")
    spend(ledger, T0 + HOUR, 10)
    spend(ledger, T0 + DAY + MIN, 1)  # the next day: the first one is in its grace
    late = spend(ledger, T0 + 2 * HOUR, 45)  # belongs to the day before
    [crossed] = of_type(late, ThresholdCrossed)
    assert (crossed.period_label, crossed.percent) == ("2026-11-18", 50)
    assert ledger.previous is not None
    assert ledger.previous.nanos == 55 * USD
    [closed] = of_type(ledger.advance(T0 + DAY + HOUR), PeriodClosed)  # grace over
    assert (closed.period_label, closed.spent_nanos, closed.requests) == ("2026-11-18", 55 * USD, 2)
    [too_late] = of_type(spend(ledger, T0 + 3 * HOUR, 5), LateSpend)
    assert too_late.event_ts_ms == T0 + 3 * HOUR
    assert ledger.spent_nanos == 1 * USD  # the current day is untouched


def test_the_opening_balance_counts_in_the_first_period_only() -> None:
    ledger = BudgetLedger(budget(hard=False, opening_spend_usd=Decimal("49.5")), "k")
    [crossed] = of_type(spend(ledger, T0, 0.5), ThresholdCrossed)
    assert crossed.percent == 50
    ledger.advance(T0 + DAY)
    assert ledger.spent_nanos == 0


def test_daily_periods_follow_the_zone_across_the_fall_back_day() -> None:
    zone = "America/New_York"
    ledger = BudgetLedger(budget(hard=False, tz=zone), "k")
    day_start = 1_793_505_600_000  # 2026-11-01T00:00-04:00, the 25-hour day
    spend(ledger, day_start, 10)
    spend(ledger, day_start + 24 * HOUR + 30 * MIN, 10)  # 23:30 local: the same day
    assert ledger.spent_nanos == 20 * USD
    period = period_of(PeriodSpec(BudgetPeriod.DAILY, zone), day_start)
    assert period.duration_ms == 25 * HOUR


def test_requests_per_minute_over_a_sliding_window_throttle_until_capacity_returns() -> None:
    config = budget(
        hard=False, thresholds=(), rate_limits=RateLimits(requests_per_minute=500),
        burst_allowance=Decimal("1.2"),
    )  # fmt: skip
    ledger = BudgetLedger(config, "k")
    changes: list[Any] = []
    for n in range(601):  # 600 allowed with the burst allowance
        changes += of_type(ledger.spend(T0 + 30_000 + n * 10, 1, 0, 1), ActionChanged)
    assert [(c.to_action, c.decided_by) for c in changes] == [
        (BudgetAction.THROTTLE, "rate_limit:requests")
    ]
    [back] = of_type(ledger.advance(T0 + 30_000 + 6_000 + MIN), ActionChanged)
    assert back.to_action is BudgetAction.ALLOW


def test_a_rolling_budget_re_arms_a_threshold_when_spend_slides_out() -> None:
    config = budget(period=BudgetPeriod.ROLLING, rolling_ms=30 * DAY, hard=False)
    ledger = BudgetLedger(config, "k")
    [crossed] = of_type(spend(ledger, T0, 55), ThresholdCrossed)
    assert crossed.percent == 50
    ledger.advance(T0 + 31 * DAY)
    assert ledger.spent_nanos == 0
    assert ledger.crossed == ()
    assert [o.percent for o in of_type(spend(ledger, T0 + 31 * DAY, 51), ThresholdCrossed)] == [50]


def test_the_tripwire_trips_on_consecutive_overspent_intervals() -> None:
    tripwire = TripwireConfig(
        target="bud.test", breach_threshold_pct=Decimal(12), consecutive_breach_limit=3,
        recovery_threshold_pct=Decimal(8), downgrade_parameters={"FUSION_MODE": "baseline_only"},
        check_interval_ms=15 * MIN,
    )  # fmt: skip
    ledger = BudgetLedger(budget(limit_usd=Decimal(96), hard=False, tripwire=tripwire), "k")
    outputs: list[Any] = []
    for i in range(4):  # plan per 15 minutes: $1; spend $2 each
        outputs += spend(ledger, T0 + i * 15 * MIN, 2)
    [tripped] = of_type(outputs, TripwireTripped)
    assert tripped.at_ms == T0 + 45 * MIN
    assert tripped.parameters == {"FUSION_MODE": "baseline_only"}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(-3 * HOUR, 5 * HOUR), st.integers(0, 10**10)), max_size=60))
def test_spent_is_always_the_exact_sum_of_the_period_s_accepted_events(
    steps: list[tuple[int, int]],
) -> None:
    ledger = BudgetLedger(budget(hard=False, thresholds=(), grace_ms=2 * HOUR), "k")
    ts, accepted = T0, []
    for delta, nanos in steps:
        ts_event = max(ts + delta, T0)
        outputs = ledger.spend(ts_event, nanos, 0, 1)
        ts = max(ts, ts_event)
        if not of_type(outputs, LateSpend):
            accepted.append((ts_event, nanos))
    if ledger.current is None:
        return
    period = ledger.current.period
    assert ledger.spent_nanos == sum(n for t, n in accepted if period.contains(t))
    if ledger.previous is not None:
        before = ledger.previous.period
        assert ledger.previous.nanos == sum(n for t, n in accepted if before.contains(t))
