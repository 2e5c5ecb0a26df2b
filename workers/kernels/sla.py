"""SLA contracts (issue 5): availability and p50/p99 response time per calendar period, the
targets met and the service credit owed (the config is `slo_targets_config.SlaContract`).

Periods are the contract's calendar periods (`budget_periods.period_of`: aligned in its time
zone, so a month holding a DST change is an hour shorter or longer). The tracker's first
period is the one holding the first event time it sees. A period closes when event time
(`record` or `advance`) reaches its end: its final report is returned then, and every period
that ends before the new time is closed in turn, empty ones included (a month without traffic
still gets its audited report, with no figures). `PeriodSpec.grace_ms` is not applied: a
record whose time falls in a closed period is late, not counted in any figure; the calls it
carries (`valid`) are reported in the next report's `late_events` (projection or final).

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

Pure: no I/O, no clock, no randomness. Memory: two counters and one sketch per tracker.
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


class SlaTracker:
    """One SLA contract (for one group of calls); see the module docstring."""

    __slots__ = (
        "_availability_penalties",
        "_period",
        "_response_penalties",
        "_target",
        "contract",
        "good",
        "late_events",
        "sketch",
        "valid",
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
        self._period: Period | None = None
        self.valid = 0
        self.good = 0
        self.sketch = QuantileSketch()
        self.late_events = 0

    def record(
        self, ts_ms: int, *, valid: int, good: int, sketch: QuantileSketch | None = None
    ) -> list[SlaReport]:
        """Count `valid` calls of which `good` met the contract, and their latencies, at event
        time `ts_ms`; returns the final reports of the periods that closed before it."""
        if valid < 0 or not 0 <= good <= valid:
            raise ValueError(f"need 0 <= good <= valid, not good={good!r} valid={valid!r}")
        reports = self.advance(ts_ms)
        period = self._period
        assert period is not None
        if ts_ms < period.start_ms:
            self.late_events += valid
            return reports
        self.valid += valid
        self.good += good
        if sketch is not None and sketch.count:
            self.sketch.merge(sketch)
        return reports

    def advance(self, ts_ms: int) -> list[SlaReport]:
        """Event time reached `ts_ms`: close every period that ended by then, in order."""
        period = self._period
        if period is None:
            self._period = period_of(self.contract.period, ts_ms)
            return []
        reports: list[SlaReport] = []
        while ts_ms >= period.end_ms:
            reports.append(self._report(period, final=True))
            self.valid = 0
            self.good = 0
            self.sketch.clear()
            self.late_events = 0
            period = next_period(self.contract.period, period)
        self._period = period
        return reports

    def projection(self) -> SlaReport:
        """The report of the current period so far (`final=False`). ValueError before the
        first event time (no period yet)."""
        if self._period is None:
            raise ValueError(f"sla {self.contract.contract_id!r} has seen no event time yet")
        return self._report(self._period, final=False)

    @property
    def period(self) -> Period | None:
        return self._period

    def _report(self, period: Period, *, final: bool) -> SlaReport:
        contract = self.contract
        valid, good = self.valid, self.good
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
        p50 = self.sketch.quantile(0.5)
        p99 = self.sketch.quantile(0.99)
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
