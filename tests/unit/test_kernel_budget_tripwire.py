"""The budget tripwire kernel: breaches, trip, hysteresis, recovery, gaps, against a reference."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.state import BudgetPeriod
from workers.kernels.budget_config import TripwireConfig
from workers.kernels.budget_periods import Period, PeriodSpec, period_of
from workers.kernels.budget_tripwire import Tripwire, TripwireRecovered, TripwireTripped

DAY = PeriodSpec(BudgetPeriod.DAILY)
T0 = 1_794_960_000_000  # a UTC midnight (2026-11-18)
MIN = 60_000
STEP = 15 * MIN
LIMIT = 9600  # per day: the plan of a 15-minute interval is exactly 100
DOWNGRADE = {"FUSION_MODE": "baseline_only"}


def wire(**overrides: object) -> Tripwire:
    fields: dict[str, object] = {
        "target": "bud.daily",
        "breach_threshold_pct": Decimal(12),
        "consecutive_breach_limit": 3,
        "recovery_threshold_pct": Decimal(8),
        "downgrade_parameters": DOWNGRADE,
        "consecutive_normal_operations": 5,
        "time_since_last_breach_ms": 2 * 60 * MIN,
        "check_interval_ms": STEP,
    }
    fields.update(overrides)
    return Tripwire(TripwireConfig(**fields), LIMIT)  # type: ignore[arg-type]


def daily(ts_ms: int) -> Period:
    return period_of(DAY, ts_ms)


def spend_intervals(tw: Tripwire, amounts: list[int], first: int = 0) -> list[object]:
    """Spend each amount in its own interval (at its start), then move to the next one."""
    outputs: list[object] = []
    for i, amount in enumerate(amounts, start=first):
        outputs += tw.record(T0 + i * STEP, amount, daily)
    outputs += tw.advance(T0 + (first + len(amounts)) * STEP, daily)
    return outputs


def test_three_breaching_intervals_in_a_row_trip_it_once() -> None:
    tw = wire()
    outputs = spend_intervals(tw, [113, 113, 113, 113, 200])
    [tripped] = outputs
    assert isinstance(tripped, TripwireTripped)
    assert tripped.at_ms == T0 + 3 * STEP  # the end of the third interval
    assert tripped.check.plan == 100
    assert tripped.check.overspend_pct == 13.0
    assert tripped.parameters == DOWNGRADE
    assert tw.tripped


def test_exactly_the_threshold_is_not_a_breach_and_a_normal_interval_restarts_the_count() -> None:
    assert spend_intervals(wire(), [112, 112, 112, 112]) == []
    assert spend_intervals(wire(), [113, 113, 50, 113, 113]) == []


def test_recovery_needs_normal_intervals_and_time_since_the_last_breach() -> None:
    tw = wire()
    spend_intervals(tw, [113, 113, 113])
    last_breach_end = T0 + 3 * STEP
    # 5 normal intervals take 75 minutes: not yet 2 h since the last breach.
    outputs = spend_intervals(tw, [100] * 7, first=3)
    assert outputs == []
    [recovered] = spend_intervals(tw, [100], first=10)
    assert isinstance(recovered, TripwireRecovered)
    assert recovered.at_ms == last_breach_end + 2 * 60 * MIN
    assert recovered.normal_operations == 8
    assert recovered.since_last_breach_ms == 2 * 60 * MIN
    assert not tw.tripped


def test_the_hysteresis_band_restarts_the_normal_count() -> None:
    tw = wire(time_since_last_breach_ms=0)
    spend_intervals(tw, [113, 113, 113])
    assert spend_intervals(tw, [100, 100, 100, 100, 110], first=3) == []  # 110: in the band
    [recovered] = spend_intervals(tw, [100] * 5, first=8)
    assert isinstance(recovered, TripwireRecovered)
    assert recovered.at_ms == T0 + 13 * STEP


def test_a_gap_without_traffic_recovers_at_the_exact_interval() -> None:
    tw = wire()
    spend_intervals(tw, [113, 113, 113])
    [recovered] = tw.advance(T0 + 3 * STEP + 24 * 60 * MIN, daily)  # a day later, one tick
    assert isinstance(recovered, TripwireRecovered)
    assert recovered.at_ms == T0 + 3 * STEP + 2 * 60 * MIN
    assert recovered.check.spend == 0


def test_a_gap_while_untripped_decides_nothing_and_ends_the_breach_streak() -> None:
    tw = wire()
    spend_intervals(tw, [113, 113])
    assert tw.advance(T0 + 10 * 24 * 60 * MIN, daily) == []
    assert tw.consecutive_breaches == 0


def test_spend_for_an_interval_already_checked_is_late() -> None:
    tw = wire()
    tw.record(T0 + 2 * STEP, 50, daily)
    tw.record(T0 + STEP, 30, daily)
    assert (tw.interval_spend, tw.late_spend) == (50, 30)


def test_the_last_interval_of_a_period_is_shorter_and_planned_pro_rata() -> None:
    hour = PeriodSpec(BudgetPeriod.HOURLY)
    tw = Tripwire(
        TripwireConfig(
            target="b", breach_threshold_pct=Decimal(1), consecutive_breach_limit=1,
            recovery_threshold_pct=Decimal(0), downgrade_parameters={},
            check_interval_ms=25 * MIN,
        ),
        6000,
    )  # fmt: skip
    tw.record(T0 + 50 * MIN, 1011, lambda ts: period_of(hour, ts))  # plan of 10 min: 1000
    [tripped] = tw.advance(T0 + 60 * MIN, lambda ts: period_of(hour, ts))
    assert isinstance(tripped, TripwireTripped)
    assert tripped.check.plan == 1000
    assert (tripped.check.start_ms, tripped.check.end_ms) == (T0 + 50 * MIN, T0 + 60 * MIN)


def reference(events: list[tuple[int, int]], end_ms: int) -> list[tuple[str, int]]:
    """Every 15-minute interval checked one by one, by the definition."""
    per_interval: dict[int, int] = {}
    for ts, amount in events:
        per_interval[(ts - T0) // STEP] = per_interval.get((ts - T0) // STEP, 0) + amount
    tripped, breaches, normal, last_breach_end = False, 0, 0, None
    outputs: list[tuple[str, int]] = []
    first = (events[0][0] - T0) // STEP
    for index in range(first, (end_ms - T0) // STEP):
        spend, end = per_interval.get(index, 0), T0 + (index + 1) * STEP
        plan = Fraction(LIMIT * STEP, 24 * 60 * MIN)
        if spend > plan * Fraction(112, 100):
            breaches, normal, last_breach_end = breaches + 1, 0, end
            if not tripped and breaches >= 3:
                tripped = True
                outputs.append(("tripped", end))
            continue
        breaches = 0
        if not tripped:
            continue
        if spend > plan * Fraction(108, 100):
            normal = 0
            continue
        normal += 1
        assert last_breach_end is not None
        if normal >= 5 and end - last_breach_end >= 2 * 60 * MIN:
            tripped, normal = False, 0
            outputs.append(("recovered", end))
    return outputs


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3 * STEP), st.integers(0, 400)), min_size=1, max_size=80),
    st.integers(0, 30 * STEP),
)
def test_matches_the_interval_by_interval_reference(
    gaps: list[tuple[int, int]], tail_ms: int
) -> None:
    events, ts = [], T0
    for gap, amount in gaps:
        ts += gap
        events.append((ts, amount))
    end_ms = ts + tail_ms
    tw = wire()
    outputs: list[object] = []
    for ts_ms, amount in events:
        outputs += tw.record(ts_ms, amount, daily)
    outputs += tw.advance(end_ms, daily)
    got = [
        ("tripped" if isinstance(o, TripwireTripped) else "recovered", o.at_ms)  # type: ignore[attr-defined]
        for o in outputs
    ]
    assert got == reference(events, end_ms)
