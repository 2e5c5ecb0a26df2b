"""SLA contracts (issue 5): availability and p50/p99 response time per calendar period, the
targets met and the service credit owed (the config is `slo_targets_config.SlaContract`).

Periods are the contract's calendar periods (`budget_periods.period_of`: aligned in its time
zone, so a month holding a DST change is an hour shorter or longer). The tracker's first
period is the one holding the first event time it sees. A period closes when event time
(`record` or `advance`) reaches its end plus the spec's `grace_ms` (0 by default;
`budget_periods.accepts`): its final report is returned then, and every period that closes by
the new time is closed in turn, in order, empty ones included (a month without traffic still
gets its audited report, with no figures). Until then a record whose time falls in it counts
in it. A record whose time falls in a closed period is late, not counted in any figure; the
calls it carries (`valid`) are reported in the next report's `late_events` (the projection's
or the next final one). Event time never goes backwards: `advance` to an earlier time does
nothing.

Figures of a period (a report):
- `availability_percent` = 100 * good / valid (None without calls); `availability_met` when
  it is at least the contract's, compared exactly (thresholds are taken as the decimals they
  print as, so 99.5 % of 1000 calls is 995 good ones, met);
- `p50_ms` / `p99_ms` from the merged latency sketch (within its relative accuracy, 1 % by
  default, of the exact lower quantiles; None without latencies); `p50_met` / `p99_met` when at
  most the contract's target (None without a target or without latencies);
- `credit_percent` = the largest credit among the availability penalties whose threshold the
  availability is below (exactly, as above), plus the largest among the response-time
  penalties whose threshold the p99 exceeds; `breaches` lists the (at most two) penalties
  applied, availability first.
`projection()` is the same report for the current period so far (`final=False`).

Which calls count (the contract's selector, group_by, excluded error types, latency source) is
the caller's business: the tracker takes counts of valid and good calls and a sketch of their
latencies, pre-aggregated or not.

Pure: no I/O, no clock, no randomness. Memory: two counters and one sketch per open period
(one, or two within a grace time).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from workers.kernels.budget_periods import Period, next_period, period_of
from workers.kernels.sketch import QuantileSketch
from workers.kernels.slo_targets_config import BreachType, SlaContract, SlaPenalty


@dataclass(frozen=True, slots=True)
class SlaReport:
    contract_id: str
    tier: str
    period_label: str
    period_start_ms: int
    period_end_ms: int
    valid: int
    good: int
    availability_percent: float | None
    p50_ms: float | None
    p99_ms: float | None
    availability_met: bool | None
    p50_met: bool | None
    p99_met: bool | None
    credit_percent: float
    breaches: tuple[SlaPenalty, ...]
    """The penalties applied (breach_type, threshold, credit_percent); at most one of each type."""
    final: bool
    """True at period close (the audited report); False for a projection."""
    late_events: int
    """Calls recorded for already closed periods since the previous final report."""


def _ratio(value: float) -> tuple[int, int]:
    """`value` as (numerator, denominator) of the decimal it prints as (99.9 is 999/10)."""
    return Decimal(str(value)).as_integer_ratio()


def _below(good: int, valid: int, percent: tuple[int, int]) -> bool:
    """100 * good / valid < num / den, exactly."""
    num, den = percent
    return 100 * good * den < num * valid


class _Open:
    """The figures of one period that still takes records."""

    __slots__ = ("good", "period", "sketch", "valid")

    def __init__(self, period: Period) -> None:
        self.period = period
        self.valid = 0
        self.good = 0
        self.sketch = QuantileSketch()


class SlaTracker:
    """One SLA contract (for one group of calls); see the module docstring."""

    __slots__ = (
        "_availability_penalties",
        "_now_ms",
        "_open",
        "_response_penalties",
        "_target",
        "contract",
        "late_events",
    )

    def __init__(self, contract: SlaContract) -> None:
        self.contract = contract
        self._target = _ratio(contract.availability_percent)
        # Largest credit first, so that the first applicable one is the one applied.
        by_credit = sorted(contract.penalties, key=lambda p: -p.credit_percent)
        self._availability_penalties = tuple(
            (p, _ratio(p.threshold)) for p in by_credit if p.breach_type is BreachType.AVAILABILITY
        )
        self._response_penalties = tuple(
            p for p in by_credit if p.breach_type is BreachType.RESPONSE_TIME
        )
        self._open: list[_Open] = []
        """Oldest first; the last holds now. More than one only within a grace time."""
        self._now_ms = 0
        self.late_events = 0

    def record(
        self, ts_ms: int, *, valid: int, good: int, sketch: QuantileSketch | None = None
    ) -> list[SlaReport]:
        """Count `valid` calls of which `good` met the contract, and their latencies, at event
        time `ts_ms`; returns the final reports of the periods that closed before it."""
        if valid < 0 or not 0 <= good <= valid:
            raise ValueError(f"need 0 <= good <= valid, not good={good!r} valid={valid!r}")
        reports = self.advance(ts_ms)
        target = self._open[-1]
        if ts_ms < target.period.start_ms:
            for candidate in reversed(self._open):
                if candidate.period.start_ms <= ts_ms:
                    target = candidate
                    break
            else:  # before every open period: its period has closed
                self.late_events += valid
                return reports
        target.valid += valid
        target.good += good
        if sketch is not None and sketch.count:
            target.sketch.merge(sketch)
        return reports

    def advance(self, ts_ms: int) -> list[SlaReport]:
        """Event time reached `ts_ms`: close every period that ended (plus the grace time) by
        then, in order."""
        spec = self.contract.period
        opened = self._open
        if not opened:
            opened.append(_Open(period_of(spec, ts_ms)))
            self._now_ms = ts_ms
            return []
        if ts_ms <= self._now_ms:
            return []
        self._now_ms = ts_ms
        reports: list[SlaReport] = []
        grace = spec.grace_ms
        while True:
            # Close before opening, so that a long gap keeps few periods open.
            while len(opened) > 1 and ts_ms >= opened[0].period.end_ms + grace:
                reports.append(self._close(opened.pop(0)))
            last = opened[-1].period
            if ts_ms < last.end_ms:
                break
            opened.append(_Open(next_period(spec, last)))
        return reports

    def projection(self) -> SlaReport:
        """The report of the current period (the one holding the newest event time) so far
        (`final=False`). ValueError before the first event time (no period yet)."""
        if not self._open:
            raise ValueError(f"sla {self.contract.contract_id!r} has seen no event time yet")
        return self._report(self._open[-1], final=False)

    @property
    def period(self) -> Period | None:
        """The current period (None before the first event time)."""
        return self._open[-1].period if self._open else None

    def _close(self, figures: _Open) -> SlaReport:
        report = self._report(figures, final=True)
        self.late_events = 0
        return report

    def _report(self, figures: _Open, *, final: bool) -> SlaReport:
        contract = self.contract
        period = figures.period
        valid, good = figures.valid, figures.good
        breaches: list[SlaPenalty] = []
        availability: float | None = None
        availability_met: bool | None = None
        if valid:
            availability = 100 * good / valid
            availability_met = not _below(good, valid, self._target)
            for penalty, threshold in self._availability_penalties:
                if _below(good, valid, threshold):
                    breaches.append(penalty)
                    break
        p50 = figures.sketch.quantile(0.5)
        p99 = figures.sketch.quantile(0.99)
        p50_target = contract.response_time_p50_ms
        p99_target = contract.response_time_p99_ms
        p50_met = None if p50 is None or p50_target is None else p50 <= p50_target
        p99_met = None if p99 is None or p99_target is None else p99 <= p99_target
        if p99 is not None:
            for penalty in self._response_penalties:
                if p99 > penalty.threshold:
                    breaches.append(penalty)
                    break
        return SlaReport(
            contract_id=contract.contract_id,
            tier=contract.tier,
            period_label=period.label,
            period_start_ms=period.start_ms,
            period_end_ms=period.end_ms,
            valid=valid,
            good=good,
            availability_percent=availability,
            p50_ms=p50,
            p99_ms=p99,
            availability_met=availability_met,
            p50_met=p50_met,
            p99_met=p99_met,
            credit_percent=float(sum(p.credit_percent for p in breaches)),
            breaches=tuple(breaches),
            final=final,
            late_events=self.late_events,
        )
