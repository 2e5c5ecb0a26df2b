"""Budget periods: DST days in America/New_York and Europe/Berlin, week start days, month,
quarter and year boundaries in non-UTC zones, grace, validation, the per-spec memo, and
hypothesis properties over every zone tzdata knows (periods contain their timestamps, tile time
with no gap or overlap, and have unique labels)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.state import BudgetPeriod
from workers.errors import ConfigError
from workers.kernels.budget_periods import (
    HOUR_MS,
    Period,
    PeriodSpec,
    accepts,
    next_period,
    period_of,
)

H = BudgetPeriod.HOURLY
D = BudgetPeriod.DAILY
W = BudgetPeriod.WEEKLY
M = BudgetPeriod.MONTHLY
Q = BudgetPeriod.QUARTERLY
Y = BudgetPeriod.ANNUAL
CALENDAR = [H, D, W, M, Q, Y]
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(iso: str) -> int:
    """Epoch ms of an ISO 8601 instant with an explicit offset."""
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(milliseconds=1)


def utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def walk(spec: PeriodSpec, from_iso: str, count: int) -> list[Period]:
    period = period_of(spec, ms(from_iso))
    periods = [period]
    for _ in range(count - 1):
        period = next_period(spec, period)
        periods.append(period)
    return periods


# --- hourly across DST ---


def test_new_york_fall_back_repeats_one_o_clock_as_two_hours() -> None:
    periods = walk(PeriodSpec(H, NEW_YORK), "2026-11-01T00:30:00-04:00", 4)
    assert [p.label for p in periods] == [
        "2026-11-01T00",
        "2026-11-01T01-04:00",  # EDT: the first 01:00-02:00
        "2026-11-01T01-05:00",  # EST: the clocks went back, the same wall hour again
        "2026-11-01T02",
    ]
    assert [utc(p.start_ms) for p in periods] == [
        "2026-11-01T04:00",
        "2026-11-01T05:00",
        "2026-11-01T06:00",
        "2026-11-01T07:00",
    ]
    assert all(p.duration_ms == HOUR_MS for p in periods)


def test_new_york_spring_forward_has_no_two_o_clock() -> None:
    periods = walk(PeriodSpec(H, NEW_YORK), "2026-03-08T00:30:00-05:00", 3)
    assert [p.label for p in periods] == ["2026-03-08T00", "2026-03-08T01", "2026-03-08T03"]
    assert periods[1].end_ms == periods[2].start_ms == ms("2026-03-08T03:00:00-04:00")


def test_berlin_fall_back_and_spring_forward_hours() -> None:
    fall = walk(PeriodSpec(H, BERLIN), "2026-10-25T01:30:00+02:00", 4)
    assert [p.label for p in fall] == [
        "2026-10-25T01",
        "2026-10-25T02+02:00",
        "2026-10-25T02+01:00",
        "2026-10-25T03",
    ]
    spring = walk(PeriodSpec(H, BERLIN), "2026-03-29T01:30:00+01:00", 2)
    assert [p.label for p in spring] == ["2026-03-29T01", "2026-03-29T03"]
    assert spring[0].end_ms == ms("2026-03-29T01:00:00+00:00")


def test_a_time_in_the_repeated_hour_finds_its_own_occurrence() -> None:
    spec = PeriodSpec(H, NEW_YORK)
    assert period_of(spec, ms("2026-11-01T01:15:00-04:00")).label == "2026-11-01T01-04:00"
    assert period_of(spec, ms("2026-11-01T01:15:00-05:00")).label == "2026-11-01T01-05:00"


def test_half_hour_transition_splits_the_hour() -> None:
    # Lord Howe Island falls back 30 minutes (02:00 +11:00 -> 01:30 +10:30).
    periods = walk(PeriodSpec(H, "Australia/Lord_Howe"), "2026-04-05T00:30:00+11:00", 4)
    assert [(p.label, p.duration_ms // 60_000) for p in periods] == [
        ("2026-04-05T00", 60),
        ("2026-04-05T01+11:00", 60),
        ("2026-04-05T01+10:30", 30),
        ("2026-04-05T02", 60),
    ]


# --- daily and weekly across DST ---


@pytest.mark.parametrize(
    ("tz", "noon", "midnight_offset", "hours"),
    [
        (NEW_YORK, "2026-03-08T12:00:00-04:00", "-05:00", 23),
        (NEW_YORK, "2026-11-01T12:00:00-05:00", "-04:00", 25),
        (NEW_YORK, "2026-11-02T12:00:00-05:00", "-05:00", 24),
        (BERLIN, "2026-03-29T12:00:00+02:00", "+01:00", 23),
        (BERLIN, "2026-10-25T12:00:00+01:00", "+02:00", 25),
    ],
)
def test_daily_period_on_dst_days(tz: str, noon: str, midnight_offset: str, hours: int) -> None:
    period = period_of(PeriodSpec(D, tz), ms(noon))
    assert period.label == noon[:10]
    assert period.start_ms == ms(f"{noon[:10]}T00:00:00{midnight_offset}")
    assert period.duration_ms == hours * HOUR_MS


def test_daily_period_starts_at_local_midnight() -> None:
    period = period_of(PeriodSpec(D, BERLIN), ms("2026-10-25T23:59:59+01:00"))
    assert period.start_ms == ms("2026-10-25T00:00:00+02:00")  # still summer time at midnight
    assert period.end_ms == ms("2026-10-26T00:00:00+01:00")


def test_skipped_midnight_starts_the_day_at_the_transition() -> None:
    # Chile springs forward at 00:00 (-04:00 -> 01:00 -03:00): 2026-09-06 has no midnight.
    period = period_of(PeriodSpec(D, "America/Santiago"), ms("2026-09-06T12:00:00-03:00"))
    assert period.label == "2026-09-06"
    assert period.start_ms == ms("2026-09-06T01:00:00-03:00")
    assert period.duration_ms == 23 * HOUR_MS


@pytest.mark.parametrize(
    ("tz", "week_start", "at_iso", "first_day_iso", "label", "hours"),
    [
        # Monday weeks: the ISO week; the one holding New York's fall-back is 169 h.
        (NEW_YORK, 0, "2026-11-01T12:00:00-05:00", "2026-10-26T00:00:00-04:00", "2026-W44", 169),
        # Sunday weeks start on the fall-back day itself; labelled by the ISO week of their
        # Thursday (Nov 5 -> W45).
        (NEW_YORK, 6, "2026-11-01T12:00:00-05:00", "2026-11-01T00:00:00-04:00", "2026-W45", 169),
        (NEW_YORK, 6, "2026-10-31T12:00:00-04:00", "2026-10-25T00:00:00-04:00", "2026-W44", 168),
        (BERLIN, 0, "2026-03-29T12:00:00+02:00", "2026-03-23T00:00:00+01:00", "2026-W13", 167),
        (BERLIN, 6, "2026-03-29T12:00:00+02:00", "2026-03-29T00:00:00+01:00", "2026-W14", 167),
    ],
)
def test_weekly_periods_across_dst(
    tz: str, week_start: int, at_iso: str, first_day_iso: str, label: str, hours: int
) -> None:
    period = period_of(PeriodSpec(W, tz, week_start=week_start), ms(at_iso))
    assert (period.start_ms, period.label) == (ms(first_day_iso), label)
    assert period.duration_ms == hours * HOUR_MS


def test_week_start_sunday_versus_monday() -> None:
    sunday = ms("2026-11-22T12:00:00+00:00")  # a Sunday
    monday_week = period_of(PeriodSpec(W, week_start=0), sunday)
    sunday_week = period_of(PeriodSpec(W, week_start=6), sunday)
    assert (utc(monday_week.start_ms), monday_week.label) == ("2026-11-16T00:00", "2026-W47")
    assert (utc(sunday_week.start_ms), sunday_week.label) == ("2026-11-22T00:00", "2026-W48")
    assert monday_week.end_ms == ms("2026-11-23T00:00:00+00:00")
    assert sunday_week.end_ms == ms("2026-11-29T00:00:00+00:00")


def test_iso_week_labels_at_the_year_boundary() -> None:
    spec = PeriodSpec(W, "Asia/Tokyo")
    labels = [p.label for p in walk(spec, "2026-12-24T12:00:00+09:00", 3)]
    assert labels == ["2026-W52", "2026-W53", "2027-W01"]  # 2026 has 53 ISO weeks


# --- months, quarters, years ---


def test_leap_day_and_february_length() -> None:
    spec_d, spec_m = PeriodSpec(D, NEW_YORK), PeriodSpec(M, NEW_YORK)
    leap = period_of(spec_d, ms("2028-02-29T23:30:00-05:00"))
    assert leap.label == "2028-02-29"
    assert next_period(spec_d, leap).label == "2028-03-01"
    february = period_of(spec_m, ms("2028-02-29T23:30:00-05:00"))
    assert (february.label, february.duration_ms) == ("2028-02", 29 * 24 * HOUR_MS)
    assert period_of(spec_m, ms("2027-02-15T00:00:00-05:00")).duration_ms == 28 * 24 * HOUR_MS


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [(D, "2026-12-31", "2027-01-01"), (W, "2026-W53", "2026-W53"), (M, "2026-12", "2027-01"),
     (Q, "2026-Q4", "2027-Q1"), (Y, "2026", "2027")],
)  # fmt: skip
def test_new_year_in_a_non_utc_zone(kind: BudgetPeriod, before: str, after: str) -> None:
    # Local midnight in Tokyo is 15:00 UTC on Dec 31; in New York 05:00 UTC on Jan 1.
    for tz, midnight in [("Asia/Tokyo", "2026-12-31T15:00"), (NEW_YORK, "2027-01-01T05:00")]:
        spec = PeriodSpec(kind, tz)
        boundary = ms(f"{midnight}:00+00:00")
        assert period_of(spec, boundary - 1).label == before
        assert period_of(spec, boundary).label == after
        if before != after:
            assert period_of(spec, boundary).start_ms == boundary


def test_quarter_and_annual_lengths_include_the_dst_hour() -> None:
    q4 = period_of(PeriodSpec(Q, NEW_YORK), ms("2026-11-15T00:00:00-05:00"))
    assert (q4.label, q4.duration_ms) == ("2026-Q4", 92 * 24 * HOUR_MS + HOUR_MS)
    year = period_of(PeriodSpec(Y, BERLIN), ms("2028-06-01T00:00:00+02:00"))
    assert (year.label, year.duration_ms) == ("2028", 366 * 24 * HOUR_MS)


# --- grace ---


def test_accepts_late_events_until_grace_after_the_end() -> None:
    spec = PeriodSpec(D, grace_ms=5 * 60_000)
    period = period_of(spec, ms("2026-11-22T10:00:00+00:00"))
    assert accepts(spec, period, period.end_ms - 1)
    assert accepts(spec, period, period.end_ms)  # ended, but late events still count
    assert accepts(spec, period, period.end_ms + 5 * 60_000 - 1)
    assert not accepts(spec, period, period.end_ms + 5 * 60_000)  # closed: total is final
    no_grace = PeriodSpec(D)
    assert not accepts(no_grace, period, period.end_ms)


# --- validation ---


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"kind": D, "tz": "Mars/Olympus_Mons"}, "tz", "Mars/Olympus_Mons"),
        ({"kind": D, "tz": "../etc/passwd"}, "tz", "../etc/passwd"),
        ({"kind": D, "tz": "America"}, "tz", "America"),
        ({"kind": D, "tz": ""}, "tz", "''"),
        ({"kind": BudgetPeriod.ROLLING}, "rolling_ms", "None"),
        ({"kind": BudgetPeriod.ROLLING, "rolling_ms": 0}, "rolling_ms", "0"),
        ({"kind": D, "rolling_ms": 1000}, "rolling_ms", "1000"),
        ({"kind": W, "week_start": 7}, "week_start", "7"),
        ({"kind": W, "week_start": -1}, "week_start", "-1"),
        ({"kind": W, "week_start": True}, "week_start", "True"),
        ({"kind": D, "grace_ms": -1}, "grace_ms", "-1"),
        ({"kind": "fortnightly"}, "kind", "fortnightly"),
    ],
)
def test_invalid_specs_name_the_field_and_value(
    kwargs: dict[str, object], field: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        PeriodSpec(**kwargs)  # type: ignore[arg-type]
    assert field in str(raised.value)
    assert value in str(raised.value)


def test_rolling_specs_have_no_calendar_periods() -> None:
    spec = PeriodSpec(BudgetPeriod.ROLLING, rolling_ms=30 * 24 * HOUR_MS)
    with pytest.raises(ValueError, match="rolling"):
        period_of(spec, 0)
    assert PeriodSpec("daily").kind is D  # type: ignore[arg-type]  # YAML gives strings


# --- the memo ---


def test_memo_returns_the_cached_period_and_never_changes_results() -> None:
    spec = PeriodSpec(H, NEW_YORK)
    first = period_of(spec, ms("2026-11-01T01:10:00-04:00"))
    assert period_of(spec, first.start_ms + 1) is first  # hit: one range check
    late = period_of(spec, first.start_ms - 1)  # miss: an older period
    assert late.end_ms == first.start_ms
    assert period_of(spec, first.start_ms) == first
    assert spec == PeriodSpec(H, NEW_YORK)  # the memo is not part of equality
    assert hash(spec) == hash(PeriodSpec(H, NEW_YORK))


# --- properties ---

ZONES = sorted(available_timezones())
_SPECS: dict[tuple[BudgetPeriod, str, int], PeriodSpec] = {}
# 1900..2100: tzdata's rules, including the POSIX rules it extrapolates after 2037.
TIMES = st.integers(min_value=-2_208_988_800_000, max_value=4_102_444_800_000)


def shared_spec(kind: BudgetPeriod, tz: str, week_start: int) -> PeriodSpec:
    """One spec per parameter set for the whole run, so the memo is exercised across examples."""
    key = (kind, tz, week_start)
    if key not in _SPECS:
        _SPECS[key] = PeriodSpec(kind, tz, week_start=week_start)
    return _SPECS[key]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(CALENDAR),
    st.sampled_from(ZONES),
    st.integers(min_value=0, max_value=6),
    TIMES,
)
def test_period_contains_ts_and_tiles_with_neighbours(
    kind: BudgetPeriod, tz: str, week_start: int, ts_ms: int
) -> None:
    spec = shared_spec(kind, tz, week_start)
    period = period_of(spec, ts_ms)
    assert period.start_ms <= ts_ms < period.end_ms
    assert period == period_of(PeriodSpec(kind, tz, week_start=week_start), ts_ms)  # no memo
    following = next_period(spec, period)
    assert following.start_ms == period.end_ms  # no gap, no overlap
    assert following.end_ms > following.start_ms
    assert following.label != period.label
    assert period_of(spec, period.start_ms) == period
    assert period_of(spec, period.end_ms - 1) == period
    assert period_of(spec, period.start_ms - 1).end_ms == period.start_ms


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(CALENDAR),
    st.sampled_from([NEW_YORK, BERLIN, "Australia/Lord_Howe", "Antarctica/Troll", "UTC"]),
    TIMES,
)
def test_labels_are_unique_along_a_run_of_periods(kind: BudgetPeriod, tz: str, ts_ms: int) -> None:
    spec = shared_spec(kind, tz, 0)
    period = period_of(spec, ts_ms)
    seen = {period.label}
    for _ in range(60 if kind is H else 14):
        period = next_period(spec, period)
        assert period.label not in seen
        seen.add(period.label)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([NEW_YORK, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata"]), TIMES)
def test_hourly_periods_are_at_most_an_hour(tz: str, ts_ms: int) -> None:
    period = period_of(shared_spec(H, tz, 0), ts_ms)
    assert 0 < period.duration_ms <= HOUR_MS
