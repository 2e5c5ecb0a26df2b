"""Burn-rate SLO kernel: the Workbook's numbers, detection and resolution times, one alert per
notify kind, the low-traffic gate, empty windows, 28-day factors, calendar periods across DST,
timeslices, no-data, late counts, constant memory, and hypothesis properties (one big advance
== many small ones, exact period totals, window sums == a recount, deterministic replay)."""

from __future__ import annotations

import gc
import math
import tracemalloc
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.state import BudgetPeriod
from workers.errors import ConfigError
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.slo import SloTracker
from workers.kernels.slo_config import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    BudgetingMethod,
    BurnRateTier,
    Notify,
    Sli,
    SliKind,
    SloConfig,
    workbook_tiers,
)
from workers.kernels.slo_outputs import (
    BurnAlertFired,
    BurnAlertResolved,
    LateCounts,
    NoDataFired,
    NoDataResolved,
    SloOutput,
    SloPeriodClosed,
)
from workers.kernels.slo_windows import BUCKETS

T0_MS = 1_795_305_600_000  # 2026-11-22T00:00:00Z
SECOND_MS = 1000
AVAILABILITY = Sli(kind=SliKind.AVAILABILITY)


def slo(**overrides: object) -> SloConfig:
    fields: dict[str, object] = {"slo_id": "chat", "sli": AVAILABILITY, "target": 0.999}
    fields.update(overrides)
    return SloConfig(**fields)  # type: ignore[arg-type]


def fired(outputs: Sequence[SloOutput]) -> list[BurnAlertFired]:
    return [o for o in outputs if isinstance(o, BurnAlertFired)]


def resolved(outputs: Sequence[SloOutput]) -> list[BurnAlertResolved]:
    return [o for o in outputs if isinstance(o, BurnAlertResolved)]


def steady(
    tracker: SloTracker, start_ms: int, seconds: int, good: int, valid: int
) -> list[SloOutput]:
    out: list[SloOutput] = []
    for second in range(seconds):
        out += tracker.record(start_ms + second * SECOND_MS, good, valid)
    return out


# --- the Workbook's numbers (99.9 % over 30 days) ---


def test_workbook_factors_for_30_and_28_days() -> None:
    assert [t.factor for t in workbook_tiers(30 * DAY_MS)] == [14.4, 6.0, 3.0, 1.0]
    assert [t.factor for t in workbook_tiers(28 * DAY_MS)] == [13.44, 5.6, 2.8, 0.9333]


def test_steady_1_44_percent_errors_fire_page_1h() -> None:
    tracker = SloTracker(slo())
    out = steady(tracker, T0_MS, 30, 10_000 - 144, 10_000)
    pages = [f for f in fired(out) if f.tier.notify is Notify.PAGE]
    assert [f.tier.name for f in pages] == ["page-1h"]
    assert pages[0].long_burn == pytest.approx(14.4)
    assert pages[0].short_burn == pytest.approx(14.4)
    assert "page-1h" in tracker.snapshot().firing


def test_slightly_below_1_44_percent_does_not_fire_page_1h() -> None:
    tracker = SloTracker(slo())
    out = steady(tracker, T0_MS, 30, 10_000 - 143, 10_000)
    assert "page-1h" not in tracker.snapshot().firing
    # 1.43 % is still above 0.6 %: the page alert comes from page-6h.
    assert [f.tier.name for f in fired(out) if f.tier.notify is Notify.PAGE] == ["page-6h"]


def test_0_6_percent_fires_page_6h_and_slightly_below_does_not() -> None:
    tracker = SloTracker(slo())
    out = steady(tracker, T0_MS, 30, 10_000 - 60, 10_000)
    assert [f.tier.name for f in fired(out) if f.tier.notify is Notify.PAGE] == ["page-6h"]
    below = SloTracker(slo())
    out = steady(below, T0_MS, 30, 10_000 - 59, 10_000)
    assert not [f for f in fired(out) if f.tier.notify is Notify.PAGE]
    assert below.snapshot().firing == ("ticket-1d", "ticket-3d")  # 5.9x is a ticket


def test_28_day_factors_apply() -> None:
    tracker = SloTracker(slo(period_ms=28 * DAY_MS))
    out = steady(tracker, T0_MS, 30, 100_000 - 1_344, 100_000)  # 1.344 % = 13.44x
    assert [f.tier.name for f in fired(out) if f.tier.notify is Notify.PAGE] == ["page-1h"]
    assert tracker.config.effective_tiers[0].factor == 13.44
    below = SloTracker(slo(period_ms=28 * DAY_MS))
    steady(below, T0_MS, 30, 100_000 - 1_343, 100_000)
    assert "page-1h" not in below.snapshot().firing


def test_15_percent_errors_page_in_the_sixth_minute_and_resolve_5_minutes_after() -> None:
    """10 req/s, one record a second; 6 h of clean traffic, then 15 % errors for 10 minutes,
    then no traffic at all: only clock ticks every 10 s."""
    tracker = SloTracker(slo())
    for second in range(0, 6 * 3600, 10):
        assert not tracker.record(T0_MS + second * SECOND_MS, 100, 100)
    errors_ms = T0_MS + 6 * HOUR_MS
    out: list[SloOutput] = []
    for second in range(600):
        bad = 1 if second % 2 == 0 else 2  # 1.5 of 10 a second
        out += tracker.record(errors_ms + second * SECOND_MS, 10 - bad, 10)
    pages = [f for f in fired(out) if f.tier.notify is Notify.PAGE]
    assert len(pages) == 1
    assert pages[0].tier.name == "page-1h"
    # The Workbook: 0.001 / 0.15 x 1 h x 14.4 = 5.76 min to detect.
    assert 5 * MINUTE_MS < pages[0].ts_ms - errors_ms <= 6 * MINUTE_MS
    assert pages[0].error_budget_remaining < 1.0
    stopped_ms = errors_ms + 600 * SECOND_MS
    after: list[SloOutput] = []
    for tick in range(1, 121):
        after += tracker.advance(stopped_ms + tick * 10 * SECOND_MS)
    page_resolved = [r for r in resolved(after) if r.tier.notify is Notify.PAGE]
    assert len(page_resolved) == 1
    assert page_resolved[0].tier.name == "page-1h"
    assert page_resolved[0].started_ms == pages[0].ts_ms
    assert page_resolved[0].short_burn == 0.0  # the 5 min window emptied
    assert 4 * MINUTE_MS <= page_resolved[0].ts_ms - stopped_ms <= 5.5 * MINUTE_MS
    assert not [f for f in fired(after) if f.tier.notify is Notify.PAGE]
    assert "page" not in tracker.snapshot().alerting


def test_a_massive_outage_opens_one_page_and_at_most_one_ticket() -> None:
    tracker = SloTracker(slo())
    out: list[SloOutput] = []
    for second in range(0, 6 * 3600, 10):
        out += tracker.record(T0_MS + second * SECOND_MS, 100, 100)
    outage_ms = T0_MS + 6 * HOUR_MS
    for second in range(0, 3 * 3600, 10):  # 3 h of 100 % errors
        out += tracker.record(outage_ms + second * SECOND_MS, 0, 100)
    during = tracker.snapshot()
    assert {"page-1h", "page-6h", "ticket-1d", "ticket-3d"} <= set(during.firing)
    # The 3 d window holds only 6 h of clean traffic, so ticket-3d (1x) fires before ticket-1d.
    assert during.alerting == {"page": "page-1h", "ticket": "ticket-3d"}
    assert during.error_budget_remaining < 0
    assert during.time_to_exhaustion_ms == 0
    recovered_ms = outage_ms + 3 * HOUR_MS
    for second in range(0, 4 * 24 * 3600, 60):  # four days of clean traffic
        out += tracker.record(recovered_ms + second * SECOND_MS, 600, 600)
    kinds = Counter(f.tier.notify for f in fired(out))
    assert kinds[Notify.PAGE] == 1
    assert kinds[Notify.TICKET] <= 1
    assert Counter(r.tier.notify for r in resolved(out)) == kinds
    assert tracker.snapshot().alerting == {}
    # Fired and resolved alternate per kind, and resolve with the tier they fired with.
    alerts = [o for o in out if isinstance(o, BurnAlertFired | BurnAlertResolved)]
    for kind in Notify:
        sequence = [type(o) for o in alerts if o.tier.notify is kind]
        assert sequence == [BurnAlertFired, BurnAlertResolved][: len(sequence)]


def test_low_traffic_one_failure_does_not_page() -> None:
    tracker = SloTracker(slo())
    out: list[SloOutput] = []
    for n in range(10 * 24 * 3):  # 10 requests an hour for three days
        ts = T0_MS + n * 6 * MINUTE_MS
        out += tracker.record(ts, 0 if n == 100 else 1, 1)
        out += tracker.advance(ts + 3 * MINUTE_MS)
    assert not [f for f in fired(out) if f.tier.notify is Notify.PAGE]


def test_min_events_does_not_hold_a_firing_tier_open() -> None:
    tracker = SloTracker(slo(min_events=50))
    steady(tracker, T0_MS, 10, 0, 10)
    assert "page-1h" in tracker.snapshot().firing
    # 5 min later the short window is empty: page-1h stops (100 < min_events does not matter),
    # but page-6h still fires, so the page alert (opened with page-1h) stays open.
    assert resolved(tracker.advance(T0_MS + 10 * SECOND_MS + 5 * MINUTE_MS)) == []
    snapshot = tracker.snapshot()
    assert "page-1h" not in snapshot.firing
    assert "page-6h" in snapshot.firing
    assert snapshot.alerting["page"] == "page-1h"
    out = tracker.advance(T0_MS + 10 * SECOND_MS + 30 * MINUTE_MS)
    pages = [r for r in resolved(out) if r.tier.notify is Notify.PAGE]
    assert [(r.tier.name, r.started_ms) for r in pages] == [("page-1h", T0_MS + 4 * SECOND_MS)]


def test_empty_windows_have_burn_zero_and_an_untouched_budget() -> None:
    tracker = SloTracker(slo(no_data_ms=None))
    for snapshot in (tracker.snapshot(),):
        assert snapshot.updated_ms is None
        assert set(snapshot.burn_rates.values()) == {0.0}
    assert tracker.record(T0_MS, 0, 0) == []
    assert tracker.advance(T0_MS + 10 * DAY_MS) == []
    snapshot = tracker.snapshot()
    assert snapshot.burn_rates == {
        "5m": 0.0, "1h": 0.0, "30m": 0.0, "6h": 0.0, "2h": 0.0, "1d": 0.0, "3d": 0.0,
    }  # fmt: skip
    assert all(math.isfinite(v) for v in snapshot.burn_rates.values())
    assert snapshot.error_budget_remaining == 1.0
    assert snapshot.time_to_exhaustion_ms is None
    assert (snapshot.good, snapshot.valid, snapshot.firing) == (0, 0, ())
    # Traffic, then a gap longer than every window: everything empty again, nothing NaN.
    tracker.record(T0_MS + 10 * DAY_MS, 0, 5)
    tracker.advance(T0_MS + 50 * DAY_MS)
    snapshot = tracker.snapshot()
    assert set(snapshot.burn_rates.values()) == {0.0}
    assert snapshot.error_budget_remaining == 1.0


def test_bad_counts_are_refused() -> None:
    tracker = SloTracker(slo())
    with pytest.raises(ValueError, match="good <= valid"):
        tracker.record(T0_MS, 3, 2)
    with pytest.raises(ValueError, match="good <= valid"):
        tracker.record(T0_MS, -1, 2)


def test_windows_must_be_whole_sixtieths() -> None:
    # Refused when the policy loads, not at the SLO's first event: 60 buckets of W / 60 ms.
    with pytest.raises(ConfigError, match="must be a multiple of 60 ms"):
        BurnRateTier(
            name="odd",
            notify=Notify.PAGE,
            factor=2,
            long_window_ms=3_600_001,
            short_window_ms=60_000,
        )


def test_time_to_exhaustion_and_budget_remaining() -> None:
    tracker = SloTracker(slo())
    # 1,000,000 valid (budget 1,000 bad) with 100 bad, all within the last hour.
    for second in range(100):
        tracker.record(T0_MS + second * SECOND_MS, 10_000 - 1, 10_000)
    snapshot = tracker.snapshot()
    assert snapshot.error_budget_remaining == pytest.approx(0.9)
    # 900 bad left at 100 bad per hour (the shortest tier's long window): 9 hours.
    assert snapshot.time_to_exhaustion_ms == pytest.approx(9 * HOUR_MS, rel=1e-9)


# --- calendar periods ---


def test_calendar_daily_period_across_the_fall_back_in_new_york() -> None:
    spec = PeriodSpec(BudgetPeriod.DAILY, tz="America/New_York")
    tracker = SloTracker(slo(period_ms=None, calendar=spec))
    start_ms = 1_793_419_200_000  # 2026-10-31T00:00-04:00
    closed: list[SloPeriodClosed] = []
    sent: list[tuple[int, int, int]] = []
    for n in range(3 * 24 * 4):  # every 15 minutes for 72 hours
        ts = start_ms + n * 15 * MINUTE_MS
        good, valid = (9, 10) if n % 7 == 0 else (10, 10)
        sent.append((ts, good, valid))
        closed += [o for o in tracker.record(ts, good, valid) if isinstance(o, SloPeriodClosed)]
    assert [p.label for p in closed] == ["2026-10-31", "2026-11-01"]
    fall_back = closed[1]
    assert fall_back.period_end_ms - fall_back.period_start_ms == 25 * HOUR_MS
    assert fall_back.period_start_ms == 1_793_505_600_000  # 00:00-04:00
    for period in closed:
        inside = [
            (g, v) for ts, g, v in sent if period.period_start_ms <= ts < period.period_end_ms
        ]
        assert period.good == sum(g for g, _ in inside)
        assert period.valid == sum(v for _, v in inside)
        assert period.attainment == period.good / period.valid
        assert period.met is False  # ~1.4 % errors against 99.9 %
        assert period.ts_ms == period.period_end_ms
    snapshot = tracker.snapshot()
    assert snapshot.period_start_ms == closed[-1].period_end_ms
    current = [(g, v) for ts, g, v in sent if ts >= closed[-1].period_end_ms]
    assert (snapshot.good, snapshot.valid) == (
        sum(g for g, _ in current),
        sum(v for _, v in current),
    )
    # The tiers' windows kept sliding across the boundary: the 1 h window is not reset.
    assert snapshot.burn_rates["1h"] > 0
    # An empty period closes with no attainment.
    assert snapshot.period_end_ms is not None
    out = tracker.advance(snapshot.period_end_ms + 2 * DAY_MS)
    empties = [o for o in out if isinstance(o, SloPeriodClosed)]
    assert [p.label for p in empties] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert empties[0].valid > 0
    assert (empties[-1].valid, empties[-1].attainment, empties[-1].met) == (0, None, None)


def test_calendar_monthly_period_across_spring_forward() -> None:
    spec = PeriodSpec(BudgetPeriod.MONTHLY, tz="America/New_York")
    tracker = SloTracker(slo(period_ms=None, calendar=spec))
    march_ms = 1_772_341_200_000  # 2026-03-01T00:00-05:00
    april_ms = 1_775_016_000_000  # 2026-04-01T00:00-04:00 (an hour short of 31 days)
    assert april_ms - march_ms == 31 * DAY_MS - HOUR_MS
    total = 0
    for hour in range(31 * 24):
        ts = march_ms + hour * HOUR_MS
        if ts < april_ms:
            tracker.record(ts, 1000, 1000)
            total += 1000
    out = tracker.advance(april_ms)
    (closed,) = out
    assert isinstance(closed, SloPeriodClosed)
    assert (closed.label, closed.good, closed.valid, closed.met) == ("2026-03", total, total, True)
    assert (closed.period_start_ms, closed.period_end_ms) == (march_ms, april_ms)


def test_counts_before_the_current_calendar_period_are_late() -> None:
    spec = PeriodSpec(BudgetPeriod.HOURLY)
    tracker = SloTracker(slo(period_ms=None, calendar=spec))
    tracker.record(T0_MS + HOUR_MS - 1, 1, 1)
    tracker.record(T0_MS + HOUR_MS, 1, 1)
    out = tracker.record(T0_MS + HOUR_MS - 1, 0, 1)
    assert out == [LateCounts(T0_MS + HOUR_MS - 1, 0, 1)]
    assert (tracker.snapshot().good, tracker.snapshot().valid) == (1, 1)
    assert tracker.snapshot().late_events == 1


# --- timeslices, no data, late counts ---


def test_timeslices_count_good_and_bad_slices() -> None:
    config = slo(budgeting=BudgetingMethod.TIMESLICES, timeslice_ms=MINUTE_MS, min_events=1)
    tracker = SloTracker(config)
    tracker.record(T0_MS, 99, 100)  # 99 %: a good slice
    tracker.record(T0_MS + 59_999, 0, 0)
    tracker.record(T0_MS + MINUTE_MS + 1, 9, 10)  # 90 % < 95 %: a bad slice
    tracker.record(T0_MS + 3 * MINUTE_MS, 19, 20)  # exactly 95 %: good
    assert (tracker.snapshot().good, tracker.snapshot().valid) == (1, 2)  # third still open
    out = tracker.record(T0_MS + 30_000, 0, 5)  # into a closed slice: late
    assert out == [LateCounts(T0_MS + 30_000, 0, 5)]
    out = tracker.advance(T0_MS + 4 * MINUTE_MS)
    snapshot = tracker.snapshot()
    assert (snapshot.good, snapshot.valid) == (2, 3)  # minute 2 had no traffic: not a slice
    # One bad slice of three over 5 min: burn (1/3) / 0.001.
    assert snapshot.burn_rates["5m"] == pytest.approx(1000 / 3)
    assert [f.tier.name for f in fired(out)] == []  # it fired when the bad slice closed
    assert "page-1h" in snapshot.firing


def test_timeslices_fire_only_when_slices_close() -> None:
    config = slo(budgeting=BudgetingMethod.TIMESLICES, timeslice_ms=MINUTE_MS, min_events=1)
    tracker = SloTracker(config)
    assert not fired(tracker.record(T0_MS, 0, 100))
    out = tracker.advance(T0_MS + MINUTE_MS)
    assert [(f.tier.name, f.ts_ms) for f in fired(out)] == [
        ("page-1h", T0_MS + MINUTE_MS),
        ("ticket-1d", T0_MS + MINUTE_MS),
    ]


def test_no_data_fires_and_resolves() -> None:
    tracker = SloTracker(slo(no_data_ms=10 * MINUTE_MS))
    tracker.record(T0_MS, 10, 10)
    assert tracker.advance(T0_MS + 10 * MINUTE_MS - 1) == []
    tracker.record(T0_MS + 5 * MINUTE_MS - 1, 0, 0)  # not a valid event
    out = tracker.advance(T0_MS + 30 * MINUTE_MS)
    assert out == [NoDataFired(T0_MS + 10 * MINUTE_MS, T0_MS)]
    assert tracker.advance(T0_MS + 40 * MINUTE_MS) == []  # once
    out = tracker.record(T0_MS + 41 * MINUTE_MS, 1, 1)
    assert out == [NoDataResolved(T0_MS + 41 * MINUTE_MS, T0_MS + 10 * MINUTE_MS)]
    out = tracker.advance(T0_MS + 60 * MINUTE_MS)
    assert out == [NoDataFired(T0_MS + 51 * MINUTE_MS, T0_MS + 41 * MINUTE_MS)]


def test_no_data_counts_from_the_first_tick_when_nothing_ever_came() -> None:
    tracker = SloTracker(slo(no_data_ms=10 * MINUTE_MS))
    assert tracker.advance(T0_MS) == []
    assert tracker.advance(T0_MS + 11 * MINUTE_MS) == [NoDataFired(T0_MS + 10 * MINUTE_MS, None)]


def test_late_counts_are_reported_and_counted_nowhere() -> None:
    tracker = SloTracker(slo())
    tracker.record(T0_MS + 40 * DAY_MS, 5, 5)
    before = tracker.snapshot()
    out = tracker.record(T0_MS + 9 * DAY_MS, 0, 7)  # older than the 30 d ring
    assert out == [LateCounts(T0_MS + 9 * DAY_MS, 0, 7)]
    after = tracker.snapshot()
    assert (after.good, after.valid, after.late_events) == (5, 5, 7)
    assert after.burn_rates == before.burn_rates
    # Older than the 5 min window but inside the 1 h one: counted where it is held.
    tracker.record(T0_MS + 40 * DAY_MS - 30 * MINUTE_MS, 0, 5)
    snapshot = tracker.snapshot()
    assert snapshot.burn_rates["5m"] == 0.0
    assert snapshot.burn_rates["1h"] == pytest.approx(0.5 / 0.001)
    assert snapshot.late_events == 7


# --- memory ---


def traced_size(events: int, per_record: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = SloTracker(CONFIG_30D)
        step_ms = 4 * DAY_MS // (events // per_record)  # spread over 4 days: rings all full
        for n in range(events // per_record):
            bad = 1 if n % 50 == 0 else 0
            tracker.record(T0_MS + n * step_ms, per_record - bad, per_record)
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tracker.snapshot().valid > 0
    return size


CONFIG_30D = slo()


def test_memory_does_not_grow_with_traffic() -> None:
    small = traced_size(1_000, 1)
    large = traced_size(1_000_000, 1_000)  # aggregated: 1,000 records of 1,000
    assert abs(large - small) <= 0.1 * small
    assert small < 16_000


# --- properties ---

FAST_TIERS = (
    BurnRateTier(
        name="page-fast", notify=Notify.PAGE, factor=4, long_window_ms=600_000,
        short_window_ms=60_000,
    ),
    BurnRateTier(
        name="page-slow", notify=Notify.PAGE, factor=2, long_window_ms=1_800_000,
        short_window_ms=180_000,
    ),
    BurnRateTier(
        name="ticket", notify=Notify.TICKET, factor=1, long_window_ms=1_800_000,
        short_window_ms=300_000,
    ),
)  # fmt: skip
CONFIGS = {
    "rolling": slo(target=0.9, period_ms=HOUR_MS, tiers=FAST_TIERS, min_events=3,
                   no_data_ms=150_000),
    "hourly-kolkata": slo(target=0.9, period_ms=None, tiers=FAST_TIERS, min_events=3,
                          calendar=PeriodSpec(BudgetPeriod.HOURLY, tz="Asia/Kolkata")),
    "slices": slo(target=0.9, period_ms=HOUR_MS, tiers=FAST_TIERS, min_events=2,
                  budgeting=BudgetingMethod.TIMESLICES, timeslice_ms=20_000,
                  timeslice_target=0.8, no_data_ms=200_000),
}  # fmt: skip

# (sub-gaps before the step, record or tick, age of the count, good, bad)
Step = tuple[list[int], bool, int, int, int]
script_steps = st.lists(
    st.tuples(
        st.lists(st.integers(0, 120_000), min_size=1, max_size=3),
        st.booleans(),
        st.sampled_from([0, 0, 0, 1_000, 30_000, 200_000, 2_000_000]),
        st.integers(0, 6),
        st.integers(0, 3),
    ),
    max_size=80,
)
START_MS = T0_MS + 17 * MINUTE_MS + 123


def replay(config: SloConfig, steps: list[Step], *, small_steps: bool) -> list[SloOutput]:
    tracker = SloTracker(config)
    out: list[SloOutput] = tracker.advance(START_MS)
    now = START_MS
    for gaps, is_record, age, good, bad in steps:
        for gap in gaps:
            now += gap
            if small_steps:
                out += tracker.advance(now)
        if is_record:
            if age and not small_steps:
                out += tracker.advance(now)  # the big step; a record can't move time to now
            out += tracker.record(now - age, good, good + bad)
        else:
            out += tracker.advance(now)
    return [*out, tracker.snapshot()]  # type: ignore[list-item]


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)), steps=script_steps)
def test_one_big_advance_equals_many_small_ones(name: str, steps: list[Step]) -> None:
    config = CONFIGS[name]
    assert replay(config, steps, small_steps=False) == replay(config, steps, small_steps=True)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(CONFIGS)), steps=script_steps)
def test_replay_is_deterministic(name: str, steps: list[Step]) -> None:
    config = CONFIGS[name]
    first = replay(config, steps, small_steps=False)
    second = replay(config, steps, small_steps=False)
    assert first == second
    assert repr(first) == repr(second)


@settings(max_examples=150, deadline=None)
@given(steps=script_steps)
def test_calendar_period_totals_are_exact_sums(steps: list[Step]) -> None:
    config = CONFIGS["hourly-kolkata"]  # +05:30: periods start at half past the UTC hour
    tracker = SloTracker(config)
    tracker.advance(START_MS)
    now = START_MS
    counted: list[tuple[int, int, int]] = []
    closed: list[SloPeriodClosed] = []
    for gaps, _, age, good, bad in steps:
        now += sum(gaps)
        ts = now - age
        tracker.advance(now)
        out = tracker.record(ts, good, good + bad)
        closed += [o for o in out if isinstance(o, SloPeriodClosed)]
        late = [o for o in out if isinstance(o, LateCounts)]
        start = tracker.snapshot().period_start_ms
        assert start is not None
        if good + bad and not late:
            assert ts >= start
            counted.append((ts, good, good + bad))
        elif late:
            assert late == [LateCounts(ts, good, good + bad)]
            assert ts < start or age >= 1_800_000 - 30_000  # the 30 min ring's span
    for period in closed:
        inside = [
            (g, v) for t, g, v in counted if period.period_start_ms <= t < period.period_end_ms
        ]
        assert (period.good, period.valid) == (sum(g for g, _ in inside), sum(v for _, v in inside))
        assert (period.period_end_ms - period.period_start_ms) == HOUR_MS
        assert (period.period_start_ms - T0_MS) % HOUR_MS == 30 * MINUTE_MS
    snapshot = tracker.snapshot()
    assert snapshot.period_start_ms is not None
    current = [(g, v) for t, g, v in counted if t >= snapshot.period_start_ms]
    assert (snapshot.good, snapshot.valid) == (
        sum(g for g, _ in current),
        sum(v for _, v in current),
    )


@settings(max_examples=150, deadline=None)
@given(steps=script_steps)
def test_rolling_period_and_burn_rates_equal_a_recount(steps: list[Step]) -> None:
    config = CONFIGS["rolling"]
    tracker = SloTracker(config)
    tracker.advance(START_MS)
    now = START_MS
    counted: list[tuple[int, int, int]] = []
    for gaps, _, age, good, bad in steps:
        now += sum(gaps)
        tracker.advance(now)
        out = tracker.record(now - age, good, good + bad)
        if good + bad and not any(isinstance(o, LateCounts) for o in out):
            counted.append((now - age, good, good + bad))
        snapshot = tracker.snapshot()
        for window, name in ((HOUR_MS, None), (60_000, "1m"), (600_000, "10m")):
            width = window // BUCKETS
            begin = (now // width - BUCKETS + 1) * width
            good_sum = sum(g for t, g, _ in counted if begin <= t <= now)
            valid_sum = sum(v for t, _, v in counted if begin <= t <= now)
            if name is None:
                assert (snapshot.good, snapshot.valid) == (good_sum, valid_sum)
            else:
                burn = (valid_sum - good_sum) / valid_sum / (1 - 0.9) if valid_sum else 0.0
                assert snapshot.burn_rates[name] == pytest.approx(burn)


class Oracle:
    """A naive model of the tier and no-data rules: recounts every window from the list of
    counts and checks the tiers at every bucket boundary of every window (no scheduling, no
    gating), and the no-data deadline at every instant up to it."""

    def __init__(self, config: SloConfig) -> None:
        self.config = config
        self.tiers = config.effective_tiers
        assert config.period_ms is not None
        self.windows = sorted(
            {w for t in self.tiers for w in (t.long_window_ms, t.short_window_ms)}
            | {config.period_ms}
        )
        self.counts: list[tuple[int, int, int]] = []
        self.firing = [False] * len(self.tiers)
        self.open: dict[Notify, tuple[BurnRateTier, int]] = {}
        self.now: int | None = None
        self.quiet_since = 0
        self.last_event: int | None = None
        self.no_data_since: int | None = None

    def sums(self, window: int) -> tuple[int, int]:
        assert self.now is not None
        width = window // BUCKETS
        begin = (self.now // width - BUCKETS + 1) * width
        inside = [(g, v) for t, g, v in self.counts if begin <= t <= self.now]
        return sum(g for g, _ in inside), sum(v for _, v in inside)

    def burn(self, window: int) -> float:
        good, valid = self.sums(window)
        return (valid - good) / valid / self.config.error_budget if valid else 0.0

    def burning(self, window: int, tier: BurnRateTier) -> bool:
        good, valid = self.sums(window)
        threshold = tier.factor * self.config.error_budget * (1 - 1e-9)
        return valid > 0 and valid - good >= threshold * valid

    def evaluate(self, out: list[SloOutput]) -> None:
        assert self.now is not None
        assert self.config.period_ms is not None
        for i, tier in enumerate(self.tiers):
            short = self.burning(tier.short_window_ms, tier)
            if self.firing[i]:
                self.firing[i] = short
            elif short and self.burning(tier.long_window_ms, tier):
                self.firing[i] = (
                    min(self.sums(tier.long_window_ms)[1], self.sums(tier.short_window_ms)[1])
                    >= self.config.min_events
                )
        for kind in Notify:
            mine = [
                (t, on) for t, on in zip(self.tiers, self.firing, strict=True) if t.notify is kind
            ]
            on = [t for t, f in mine if f]
            if kind not in self.open and on:
                tier = max(on, key=lambda t: t.factor)
                self.open[kind] = (tier, self.now)
                long_burn = self.burn(tier.long_window_ms)
                short_burn = self.burn(tier.short_window_ms)
                out.append(BurnAlertFired(tier, self.now, long_burn, short_burn, self.remaining()))
            elif kind in self.open and not on:
                tier, started = self.open.pop(kind)
                long_burn = self.burn(tier.long_window_ms)
                short_burn = self.burn(tier.short_window_ms)
                out.append(BurnAlertResolved(tier, self.now, started, long_burn, short_burn,
                                             self.remaining()))  # fmt: skip

    def remaining(self) -> float:
        assert self.config.period_ms is not None
        good, valid = self.sums(self.config.period_ms)
        return 1.0 - (valid - good) / (self.config.error_budget * valid) if valid else 1.0

    def move(self, to: int, out: list[SloOutput]) -> None:
        if self.now is None:
            self.now = self.quiet_since = to
            return
        widths = {w // BUCKETS for w in self.windows}
        boundaries = {k * b for b in widths for k in range(self.now // b + 1, to // b + 1)}
        no_data_ms = self.config.no_data_ms
        deadline = None if no_data_ms is None else self.quiet_since + no_data_ms
        for instant in sorted(boundaries | {to} | ({deadline} if deadline else set())):
            if self.now < instant <= to:
                self.now = instant
                self.evaluate(out)
                if deadline is not None and self.no_data_since is None and instant >= deadline:
                    self.no_data_since = deadline
                    out.append(NoDataFired(deadline, self.last_event))

    def record(self, ts: int, good: int, valid: int) -> list[SloOutput]:
        out: list[SloOutput] = []
        self.move(ts, out)
        assert self.now is not None
        if not valid:
            return out
        held = False
        for window in self.windows:
            width = window // BUCKETS
            held = held or ts >= (self.now // width - BUCKETS + 1) * width
        if not held:
            return [*out, LateCounts(ts, good, valid)]
        self.counts.append((ts, good, valid))
        self.last_event = max(ts, self.last_event or ts)
        self.quiet_since = max(self.quiet_since, ts)
        if self.no_data_since is not None:
            out.append(NoDataResolved(self.now, self.no_data_since))
            self.no_data_since = None
            self.quiet_since = self.now
        self.evaluate(out)
        return out

    def advance(self, ts: int) -> list[SloOutput]:
        out: list[SloOutput] = []
        self.move(ts, out)
        return out


@settings(max_examples=150, deadline=None)
@given(steps=script_steps, no_data=st.sampled_from([None, 61_000, 150_000]))
def test_alerts_equal_a_naive_model_checked_at_every_bucket_boundary(
    steps: list[Step], no_data: int | None
) -> None:
    config = slo(target=0.9, period_ms=HOUR_MS, tiers=FAST_TIERS, min_events=3, no_data_ms=no_data)
    tracker = SloTracker(config)
    oracle = Oracle(config)
    assert tracker.advance(START_MS) == oracle.advance(START_MS) == []
    now = START_MS
    for gaps, is_record, age, good, bad in steps:
        now += sum(gaps)
        if is_record:
            if age:
                assert tracker.advance(now) == oracle.advance(now)
            assert tracker.record(now - age, good, good + bad) == oracle.record(
                now - age, good, good + bad
            )
        else:
            assert tracker.advance(now) == oracle.advance(now)
    assert tracker.snapshot().firing == tuple(
        t.name for t, on in zip(oracle.tiers, oracle.firing, strict=True) if on
    )


def test_a_period_shorter_than_every_workbook_window_has_no_tiers() -> None:
    tracker = SloTracker(slo(period_ms=30 * MINUTE_MS))
    assert tracker.record(T0_MS, 0, 100) == []
    snapshot = tracker.snapshot()
    assert (snapshot.good, snapshot.valid, snapshot.burn_rates) == (0, 100, {})
    assert snapshot.error_budget_remaining == pytest.approx(-999)
    assert snapshot.time_to_exhaustion_ms is None
