"""Burn-rate SLO kernel (DESIGN §6, issue 5): multiwindow, multi-burn-rate alerts as in the
Google SRE Workbook, the remaining error budget, calendar periods and no-data alerts.

`SloTracker` takes counts already classified upstream (good of valid, possibly aggregated per
second) with their event time, and clock ticks (`advance`), and returns what changed. Exact
semantics:

Windows. Every tier's long and short window, and the rolling period, is a ring of 60 buckets
in `workers.kernels.slo_windows.SloWindows` (a `bucket_ring.BucketRing` with Resilience4j's
edge): at event time `now` a window of length W counts the events with
`(now // (W/60) - 59) * (W/60) <= ts <= now`, a span between W - W/60 and W (see that
module). Burn rate over a window = (bad / valid) / (1 - target), 0.0
for an empty window.

Tiers. A tier starts firing when both its windows burn at >= its factor and both hold at least
`config.min_events` valid events (slices, budgeting by timeslices). Once firing it stays firing
until its SHORT window burns below the factor (an empty short window resolves it; min_events
does not hold it open). Burn rates are compared with a relative tolerance of 1e-9, so that an
error ratio of exactly factor x (1 - target) (1.44 % for 14.4 at 99.9 %) counts despite binary
floating point (1 - 0.999 is not 0.001 in a float).

Alerts (no noise). At most one alert is open per notify kind (page, ticket):
`BurnAlertFired` when the first tier of that kind starts firing, labelled with the
highest-factor tier of that kind firing at that instant (the first in config order on a tie);
nothing more while it is open, whatever other tiers of that kind do; `BurnAlertResolved` (with
the tier it fired with) when no tier of that kind fires any more.

When decisions are made. After every `record` that could change one (a count with a bad event,
or any count while a tier fires or burns but lacks min_events), and at every instant an
`advance` passes where one could change: a non-empty bucket leaving a window (stamped with that
instant, `(k + 60) * W/60`), a time slice closing, a calendar period ending, a no-data deadline.
Between those instants nothing can change, so one `advance` over a long gap produces exactly
the outputs (order and content) of many small advances over it. Outputs at one instant come in
this order: period closed, tier alerts (page before ticket), no-data fired.

Time. Event time never goes backwards: a call with `ts_ms` later than now first advances to
it. A count with `ts_ms` earlier than now is counted in the windows still holding it and in the
current calendar period; a count held by no window, before the current calendar period, or in
a time slice already closed is late: counted nowhere, reported as `LateCounts`.

Period. Rolling (`config.period_ms`): good/valid over the period's ring (its span is between
period - period/60 and period: 12 h short of 30 d at most). Calendar (`config.calendar`, a
DST-correct `budget_periods.PeriodSpec`): exact totals per period; when event time reaches a
period's end, `SloPeriodClosed` (attainment = good/valid, met = attainment >= target, None
for an empty period) and the new period starts at zero; the tiers' windows keep sliding across
the boundary. error_budget_remaining = 1 - bad / ((1 - target) x valid), 1.0 with no valid
events, negative once overspent.

Timeslices (`BudgetingMethod.TIMESLICES`). Event time is cut into `timeslice_ms` slices
aligned to the epoch. A slice with valid events is good when good/valid >= `timeslice_target`;
when event time reaches its end it is counted as one valid unit (good or bad) at its last
millisecond (end - 1) into the windows and the period holding that instant. Slices without
valid events count for nothing.

No data (`config.no_data_ms`). `NoDataFired` at exactly `no_data_ms` of event time after the
last valid event counted (or after the first call, or after the last `NoDataResolved`);
`NoDataResolved` at the next valid event counted.

time_to_exhaustion_ms: the bad events the period still allows, (1 - target) x valid - bad,
divided by the bad-event rate over the shortest tier's long window (bad / its nominal length),
rounded down; 0 when exhausted (or when a calendar period has no valid event yet but bad events
are arriving), None when that rate is 0 and the budget is not exhausted, or with no tiers.

Cost: a count in the current head buckets is a few integer operations, plus the tier checks
when it could change a decision (O(tiers)); advancing is O(1) unless it passes an instant
where something changes. Memory is constant per tracker (the windows' rings and a few scalars,
about 14 kB with the Workbook's tiers, 7.7 kB of it the 8 rings' buckets; bench.slo_kernel).

Pure: no I/O, no clock, no randomness; time comes only with the calls.
"""

from __future__ import annotations

from workers.errors import ConfigError
from workers.kernels.budget_periods import Period, next_period, period_of
from workers.kernels.slo_alerts import BurnAlerts
from workers.kernels.slo_config import BudgetingMethod, SloConfig
from workers.kernels.slo_outputs import (
    LateCounts,
    NoDataFired,
    NoDataResolved,
    SloOutput,
    SloPeriodClosed,
    SloSnapshot,
)
from workers.kernels.slo_timeslices import Timeslices
from workers.kernels.slo_windows import NEVER, SloWindows

_BEFORE_ALL = -NEVER


class SloTracker:
    """One SLO's burn-rate state (one per SLO and group-by value set). Mutable, in place."""

    __slots__ = (
        "_alerts",
        "_budget",
        "_calendar",
        "_last_event_ms",
        "_late_events",
        "_next_due",
        "_no_data_ms",
        "_no_data_since",
        "_now",
        "_period",
        "_period_good",
        "_period_index",
        "_period_start",
        "_period_valid",
        "_quiet_since",
        "_rate_index",
        "_slices",
        "_windows",
        "_windows_ms",
        "config",
    )

    def __init__(self, config: SloConfig) -> None:
        self.config = config
        calendar = config.calendar
        if calendar is not None and calendar.kind.value == "rolling":
            raise ConfigError(f"slo {config.slo_id!r} calendar must not be rolling: use period_ms")
        tiers = config.effective_tiers
        windows = _windows_ms(config)
        self._windows_ms = windows
        self._windows = SloWindows(windows, 0)  # replaced at the first call
        self._budget = config.error_budget
        self._alerts = BurnAlerts(tiers, windows, self._budget, config.min_events)
        shortest = min(tiers, key=lambda tier: tier.long_window_ms, default=None)
        self._rate_index = -1 if shortest is None else windows.index(shortest.long_window_ms)
        self._period_index = -1 if config.period_ms is None else windows.index(config.period_ms)
        self._calendar = calendar
        self._period: Period | None = None
        self._period_start = _BEFORE_ALL
        self._period_good = 0
        self._period_valid = 0
        self._slices = (
            Timeslices(config.timeslice_ms, config.timeslice_target)
            if config.budgeting is BudgetingMethod.TIMESLICES
            else None
        )
        self._no_data_ms = config.no_data_ms
        self._no_data_since: int | None = None
        self._quiet_since = 0
        self._last_event_ms = _BEFORE_ALL
        """Event time of the last valid event counted (_BEFORE_ALL: none yet)."""
        self._late_events = 0
        self._now: int | None = None
        self._next_due = NEVER

    # --- public API ---

    @property
    def now_ms(self) -> int | None:
        return self._now

    def record(self, ts_ms: int, good: int, valid: int) -> list[SloOutput]:
        """Count `good` of `valid` events at event time `ts_ms` (0 <= good <= valid)."""
        if good < 0 or good > valid:
            raise ValueError(f"need 0 <= good <= valid, not good={good} valid={valid}")
        now = self._now
        windows = self._windows
        if now is not None and now < ts_ms < self._next_due and ts_ms < windows.head_hi_ms:
            # Time moves on inside the head buckets with nothing due (the usual case).
            out: list[SloOutput] = []
            windows.now_ms = self._now = now = ts_ms
        else:  # the first call, a later time past something due, or a late count
            out = self.advance(ts_ms)
            windows = self._windows
            now = self._now
            assert now is not None
        if not valid:
            return out
        slices = self._slices
        if slices:
            if not slices.add(ts_ms, now, good, valid):
                self._late(ts_ms, good, valid, out)
            else:
                if slices.valid == valid and slices.end_ms < self._next_due:  # its first count
                    self._next_due = slices.end_ms
                self._data(ts_ms, now, out)
            return out
        if ts_ms >= windows.head_lo_ms and ts_ms >= self._period_start:
            if not windows.pending_valid and windows.pending_expiry_ms < self._next_due:
                self._next_due = windows.pending_expiry_ms
            windows.pending_good += good
            windows.pending_valid += valid
        elif ts_ms >= self._period_start and windows.add(ts_ms, good, valid):
            self._next_due = min(self._next_due, windows.next_change_ms())
        else:
            self._late(ts_ms, good, valid, out)
            return out
        self._period_good += good
        self._period_valid += valid
        if ts_ms > self._last_event_ms:  # _data, inlined for the hot path
            self._last_event_ms = ts_ms
            if ts_ms > self._quiet_since:
                self._quiet_since = ts_ms
        if self._no_data_since is not None:
            self._data(ts_ms, now, out)
        alerts = self._alerts
        if (good < valid or alerts.hot) and alerts.check(windows):
            alerts.notify(now, windows, self._period_remaining(), out)
        return out

    def advance(self, ts_ms: int) -> list[SloOutput]:
        """Event time reached `ts_ms` (a clock tick): alerts resolve, periods roll, no-data
        fires, with no events."""
        out: list[SloOutput] = []
        now = self._now
        if now is None:
            self._start(ts_ms)
            return out
        if ts_ms <= now:
            return out
        if ts_ms >= self._next_due:
            self._run_due(ts_ms, out)
        windows = self._windows
        if ts_ms >= windows.head_hi_ms:
            windows.roll(ts_ms)
        else:
            windows.now_ms = ts_ms
        self._now = ts_ms
        return out

    def snapshot(self) -> SloSnapshot:
        windows = self._windows
        if self._period_index >= 0:
            good = windows.good(self._period_index)
            valid = windows.valid(self._period_index)
        else:
            good, valid = self._period_good, self._period_valid
        tte: int | None = None
        if self._rate_index >= 0:
            index = self._rate_index
            bad_rate = (windows.valid(index) - windows.good(index)) / self._windows_ms[index]
            remaining = self._budget * valid - (valid - good)
            if valid and remaining <= 0:
                tte = 0
            elif bad_rate > 0:
                tte = int(max(remaining, 0.0) / bad_rate)
        period = self._period
        return SloSnapshot(
            good=good,
            valid=valid,
            error_budget_remaining=self._budget_remaining(good, valid),
            burn_rates=self._alerts.burn_rates(windows),
            firing=self._alerts.firing(),
            alerting=self._alerts.alerting(),
            time_to_exhaustion_ms=tte,
            period_start_ms=None if period is None else period.start_ms,
            period_end_ms=None if period is None else period.end_ms,
            last_event_ms=self._last_event(),
            updated_ms=self._now,
            late_events=self._late_events,
        )

    # --- time ---

    def _start(self, ts_ms: int) -> None:
        self._now = ts_ms
        self._windows = SloWindows(self._windows_ms, ts_ms)
        if self._calendar is not None:
            self._period = period_of(self._calendar, ts_ms)
            self._period_start = self._period.start_ms
        self._quiet_since = ts_ms
        if self._slices is not None:
            self._slices.start(ts_ms)
        self._reschedule()

    def _reschedule(self) -> None:
        due = self._windows.next_change_ms()
        if self._period is not None and self._period.end_ms < due:
            due = self._period.end_ms
        slices = self._slices
        if slices is not None and slices.valid and slices.end_ms < due:
            due = slices.end_ms
        if self._no_data_ms is not None and self._no_data_since is None:
            due = min(due, self._quiet_since + self._no_data_ms)
        self._next_due = due

    def _run_due(self, ts_ms: int, out: list[SloOutput]) -> None:
        """Stop at every instant <= ts_ms where something is due, in time order."""
        windows = self._windows
        while self._next_due <= ts_ms:
            due = self._next_due
            changed = False
            slices = self._slices
            if slices is not None and slices.valid and slices.end_ms <= due:
                self._close_slice(slices)
                changed = True
            period = self._period
            if period is not None and period.end_ms <= due:
                self._close_period(period, out)
            changed = windows.roll(due) or changed
            self._now = due
            if changed:
                self._evaluate(due, out)
            if self._no_data_ms is not None and self._no_data_since is None:
                deadline = self._quiet_since + self._no_data_ms
                if deadline <= due:
                    self._no_data_since = deadline
                    out.append(NoDataFired(deadline, self._last_event()))
            self._reschedule()

    def _close_slice(self, slices: Timeslices) -> None:
        last_ms, good = slices.close()
        self._windows.roll(last_ms)
        self._windows.add(last_ms, good, 1)
        self._period_good += good
        self._period_valid += 1

    def _close_period(self, period: Period, out: list[SloOutput]) -> None:
        assert self._calendar is not None
        good, valid = self._period_good, self._period_valid
        attainment = good / valid if valid else None
        out.append(
            SloPeriodClosed(
                ts_ms=period.end_ms,
                period_start_ms=period.start_ms,
                period_end_ms=period.end_ms,
                label=period.label,
                good=good,
                valid=valid,
                attainment=attainment,
                met=None if attainment is None else attainment >= self.config.target,
            )
        )
        self._period = next_period(self._calendar, period)
        self._period_start = self._period.start_ms
        self._period_good = 0
        self._period_valid = 0

    # --- counts ---

    def _last_event(self) -> int | None:
        return None if self._last_event_ms == _BEFORE_ALL else self._last_event_ms

    def _late(self, ts_ms: int, good: int, valid: int, out: list[SloOutput]) -> None:
        self._late_events += valid
        out.append(LateCounts(ts_ms, good, valid))

    def _data(self, ts_ms: int, now: int, out: list[SloOutput]) -> None:
        """A valid event was counted at ts_ms."""
        if ts_ms > self._last_event_ms:
            self._last_event_ms = ts_ms
        if ts_ms > self._quiet_since:
            self._quiet_since = ts_ms
        if self._no_data_since is not None:
            out.append(NoDataResolved(now, self._no_data_since))
            self._no_data_since = None
            self._quiet_since = now
            assert self._no_data_ms is not None
            self._next_due = min(self._next_due, now + self._no_data_ms)

    # --- decisions ---

    def _evaluate(self, now: int, out: list[SloOutput]) -> None:
        alerts = self._alerts
        if alerts.check(self._windows):
            alerts.notify(now, self._windows, self._period_remaining(), out)

    def _period_remaining(self) -> float:
        if self._period_index >= 0:
            windows = self._windows
            return self._budget_remaining(
                windows.good(self._period_index), windows.valid(self._period_index)
            )
        return self._budget_remaining(self._period_good, self._period_valid)

    def _budget_remaining(self, good: int, valid: int) -> float:
        if not valid:
            return 1.0
        return 1.0 - (valid - good) / (self._budget * valid)


def _windows_ms(config: SloConfig) -> tuple[int, ...]:
    """The distinct windows a tracker keeps: every tier's long and short one, then the rolling
    period."""
    windows: list[int] = []
    for tier in config.effective_tiers:
        for window in (tier.long_window_ms, tier.short_window_ms):
            if window not in windows:
                windows.append(window)
    if config.period_ms is not None and config.period_ms not in windows:
        windows.append(config.period_ms)
    return tuple(windows)
