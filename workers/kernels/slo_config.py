"""SLO configuration (DESIGN §6, issue 5): immutable, validated values for the SLO kernels.

No I/O: the policy loader (workers.policies.slos) builds these from a file, the kernels read
them. Durations are integer milliseconds (`*_ms`), objectives are fractions (0.999, not 99.9).

Burn-rate SLOs follow the Google SRE Workbook (chapter 5, "Alerting on SLOs"): an SLI is a
ratio of good to valid events; the error budget is `1 - target` of the events in the period;
the burn rate over a window is `error ratio / (1 - target)` (1.0 spends the budget exactly by
the period's end). A tier alerts when both its long and its short window burn at >= `factor`.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from schemas.limits import MAX_ID_LEN
from workers.errors import ConfigError
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.checks import check_int, preview
from workers.kernels.policy_limits import (
    MAX_COUNT,
    MAX_FACTOR,
    MAX_LATENCY_MS,
    MAX_POLICY_DURATION_MS,
    MAX_TIERS,
    MAX_TIMESLICE_MS,
)
from workers.kernels.slo_windows import BUCKETS as WINDOW_BUCKETS

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Event fields an SLO may select on and group by (schemas.events: ToolInvocation and
# LatencyEvent fields; `attributes.<name>` selects on a free-form attribute).
SELECTOR_FIELDS = (
    "vendor",
    "tool",
    "model",
    "team",
    "project",
    "user",
    "api_key_id",
    "org",
    "environment",
)
ATTRIBUTE_PREFIX = "attributes."

DEFAULT_MIN_EVENTS = 20
"""Both windows of a tier need this many valid events before the tier may fire: at 10
requests an hour one failure is a 10 % error ratio (100x burn for 99.9 %), and must not page."""

_GLOB_CHARS = frozenset("*?[")


class SliKind(StrEnum):
    AVAILABILITY = "availability"
    """Good = a call that did not fail (status success); errors whose `error_type` is in
    `excluded_error_types` (e.g. 4xx caused by the caller) are not valid events at all."""
    LATENCY = "latency"
    """Good = a latency <= `latency_threshold_ms` (ToolInvocation.duration_ms, or
    LatencyEvent.latency_ms of `latency_kind`)."""


class LatencySource(StrEnum):
    """Where a latency SLI reads its values."""

    DURATION = "duration"
    """ToolInvocation.duration_ms."""
    TOTAL = "total"
    TTFB = "ttfb"
    PROBE = "probe"
    """LatencyEvent.latency_ms of that `kind`."""


class BudgetingMethod(StrEnum):
    OCCURRENCES = "occurrences"
    """Good events / valid events (OpenSLO's Occurrences)."""
    TIMESLICES = "timeslices"
    """Good slices / slices with traffic: a slice of `timeslice_ms` is good when its own ratio
    is >= `timeslice_target` (OpenSLO's Timeslices; for low-traffic services, where one bad
    call among few would otherwise burn a large part of the budget)."""


class Notify(StrEnum):
    """How a burn-rate tier notifies (the Workbook's two kinds)."""

    PAGE = "page"
    TICKET = "ticket"


def _fail(owner: str, name: str, value: object, rule: str) -> ConfigError:
    shown = value.value if isinstance(value, StrEnum) else value
    return ConfigError(f"{owner} {name} {rule}, not {preview(shown)}")


def check_fraction(owner: str, name: str, value: object) -> float:
    """A number strictly between 0 and 1 (an objective, not a percentage)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise _fail(owner, name, value, "must be a fraction strictly between 0 and 1")
    return float(value)


def check_positive(owner: str, name: str, value: object, maximum: float | None = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _fail(owner, name, value, "must be a finite number > 0")
    if maximum is not None and value > maximum:
        raise _fail(owner, name, value, f"must be <= {maximum:,.0f}")
    return float(value)


def check_window(owner: str, name: str, value: object, minimum: int = WINDOW_BUCKETS) -> int:
    """A window of `SloWindows`: whole milliseconds of its 60 buckets, at most a policy's
    longest duration."""
    window = check_int(owner, name, value, minimum, MAX_POLICY_DURATION_MS)
    if window % WINDOW_BUCKETS:
        rule = f"must be a multiple of {WINDOW_BUCKETS} ms (its {WINDOW_BUCKETS} buckets)"
        raise _fail(owner, name, window, rule)
    return window


def check_selector(owner: str, selector: Mapping[str, str]) -> None:
    for name, pattern in selector.items():
        if name not in SELECTOR_FIELDS and not name.startswith(ATTRIBUTE_PREFIX):
            known = ", ".join(SELECTOR_FIELDS)
            raise _fail(owner, "selector", name, f"fields are {known} or attributes.<name>")
        if not isinstance(pattern, str) or not pattern:
            raise _fail(owner, f"selector.{name}", pattern, "must be a non-empty glob")


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str] | None:
    """None for a literal pattern (compared with ==, the common and fast case)."""
    if _GLOB_CHARS.isdisjoint(pattern):
        return None
    return re.compile(fnmatch.translate(pattern))


def glob_matches(pattern: str, value: str | None) -> bool:
    """fnmatch semantics, case-sensitive; a missing field matches nothing."""
    if value is None:
        return False
    compiled = _glob(pattern)
    return value == pattern if compiled is None else compiled.match(value) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnRateTier:
    """One multiwindow alert: fires when the burn rate over both windows is >= `factor`,
    resolves when the short window falls back under it (so about `short_window_ms` after
    the errors stop)."""

    name: str
    """Unique within the SLO, stable (it is the alert's `labels.tier`), e.g. "page-1h"."""
    notify: Notify
    factor: float
    long_window_ms: int
    short_window_ms: int

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_ID_LEN:
            raise _fail("tier", "name", self.name, f"must be 1-{MAX_ID_LEN} characters")
        if not isinstance(self.notify, Notify):
            raise _fail("tier", "notify", self.notify, "must be page or ticket")
        check_positive(f"tier {self.name}", "factor", self.factor, MAX_FACTOR)
        check_window(f"tier {self.name}", "long_window_ms", self.long_window_ms)
        check_window(f"tier {self.name}", "short_window_ms", self.short_window_ms)
        if self.short_window_ms >= self.long_window_ms:
            raise _fail(
                f"tier {self.name}",
                "short_window_ms",
                self.short_window_ms,
                f"must be shorter than long_window_ms ({self.long_window_ms})",
            )


# The Workbook's table for a 30-day SLO: (notify, budget fraction, long window, short window).
# The factor is fraction x period / long window, so another period gets the same budget
# fractions: 30 d -> 14.4, 6, 3, 1; 28 d -> 13.44, 5.6, 2.8, 0.9333.
WORKBOOK_TIERS: tuple[tuple[Notify, float, int, int], ...] = (
    (Notify.PAGE, 0.02, HOUR_MS, 5 * MINUTE_MS),
    (Notify.PAGE, 0.05, 6 * HOUR_MS, 30 * MINUTE_MS),
    (Notify.TICKET, 0.10, DAY_MS, 2 * HOUR_MS),
    (Notify.TICKET, 0.10, 3 * DAY_MS, 6 * HOUR_MS),
)


def window_name(window_ms: int) -> str:
    """ "5m", "1h", "3d", "90s": the largest unit that divides the window exactly."""
    for unit_ms, suffix in ((DAY_MS, "d"), (HOUR_MS, "h"), (MINUTE_MS, "m"), (1000, "s")):
        if window_ms % unit_ms == 0:
            return f"{window_ms // unit_ms}{suffix}"
    return f"{window_ms}ms"


def factor_for(budget_fraction: float, period_ms: int, long_window_ms: int) -> float:
    """Burn rate that spends `budget_fraction` of the period's error budget in the long
    window (rounded to 4 decimals so that 28 d gives 0.9333, not 0.933333...)."""
    return round(budget_fraction * period_ms / long_window_ms, 4)


def workbook_tiers(period_ms: int) -> tuple[BurnRateTier, ...]:
    """The Workbook's four tiers scaled to `period_ms`; tiers whose long window does not fit
    in the period (a 1-day period has no 3-day tier) are left out."""
    return tuple(
        BurnRateTier(
            name=f"{notify.value}-{window_name(long_ms)}",
            notify=notify,
            factor=factor_for(fraction, period_ms, long_ms),
            long_window_ms=long_ms,
            short_window_ms=short_ms,
        )
        for notify, fraction, long_ms, short_ms in WORKBOOK_TIERS
        if long_ms <= period_ms
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Sli:
    kind: SliKind
    excluded_error_types: frozenset[str] = frozenset()
    """AVAILABILITY: errors of these types are not valid events (neither good nor bad)."""
    latency_threshold_ms: float | None = None
    """LATENCY: a request is good when its latency is <= this."""
    latency_source: LatencySource = LatencySource.DURATION

    def __post_init__(self) -> None:
        if not isinstance(self.kind, SliKind):
            raise _fail("sli", "kind", self.kind, "must be availability or latency")
        if self.kind is SliKind.LATENCY:
            if self.latency_threshold_ms is None:
                raise _fail("sli", "latency_threshold_ms", None, "is required for latency")
            check_positive("sli", "latency_threshold_ms", self.latency_threshold_ms, MAX_LATENCY_MS)
        elif self.latency_threshold_ms is not None:
            raise _fail("sli", "latency_threshold_ms", self.latency_threshold_ms, "is latency-only")


@dataclass(frozen=True, slots=True, kw_only=True)
class SloConfig:
    """One burn-rate SLO. With `group_by`, each distinct value set of those fields is its own
    SLO state (e.g. group_by vendor, tool: one per vendor/tool), all with this objective."""

    slo_id: str
    sli: Sli
    target: float
    """Objective as a fraction (0.999); the error budget is 1 - target."""
    period_ms: int | None = 30 * DAY_MS
    """Rolling period; None when `calendar` is set."""
    calendar: PeriodSpec | None = None
    """Calendar period in a time zone (DST-correct, workers.kernels.budget_periods)."""
    description: str = ""
    selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Event field (or attributes.<name>) -> glob; every entry must match."""
    group_by: tuple[str, ...] = ()
    budgeting: BudgetingMethod = BudgetingMethod.OCCURRENCES
    timeslice_ms: int = MINUTE_MS
    timeslice_target: float = 0.95
    tiers: tuple[BurnRateTier, ...] = ()
    """Empty: `workbook_tiers` of the period (see `effective_tiers`)."""
    min_events: int = DEFAULT_MIN_EVENTS
    """Valid events (slices, when budgeting by timeslices) both windows of a tier need."""
    no_data_ms: int | None = None
    """Alert (severity warning) when no valid event arrived for this long; None: never."""
    sla_tier: str | None = None
    """standard | premium | enterprise when an SLA contract applies (carried in the state)."""

    def __post_init__(self) -> None:
        owner = f"slo {self.slo_id!r}"
        if not self.slo_id or len(self.slo_id) > MAX_ID_LEN:
            raise _fail("slo", "id", self.slo_id, f"must be 1-{MAX_ID_LEN} characters")
        if not isinstance(self.sli, Sli):
            raise _fail(owner, "sli", self.sli, "must be an Sli")
        check_fraction(owner, "target", self.target)
        if (self.period_ms is None) == (self.calendar is None):
            raise _fail(owner, "period_ms", self.period_ms, "or calendar (exactly one) is needed")
        if self.period_ms is not None:
            check_window(owner, "period_ms", self.period_ms, MINUTE_MS)
        check_selector(owner, self.selector)
        for name in self.group_by:
            if name not in SELECTOR_FIELDS and not name.startswith(ATTRIBUTE_PREFIX):
                raise _fail(owner, "group_by", name, "must name an event field")
        if not isinstance(self.budgeting, BudgetingMethod):
            raise _fail(owner, "budgeting", self.budgeting, "must be occurrences or timeslices")
        check_int(owner, "timeslice_ms", self.timeslice_ms, 1000, MAX_TIMESLICE_MS)
        check_fraction(owner, "timeslice_target", self.timeslice_target)
        check_int(owner, "min_events", self.min_events, 0, MAX_COUNT)
        if self.no_data_ms is not None:
            check_int(owner, "no_data_ms", self.no_data_ms, 1000, MAX_POLICY_DURATION_MS)
        if len(self.tiers) > MAX_TIERS:
            raise _fail(owner, "tiers", len(self.tiers), f"may list at most {MAX_TIERS}")
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise _fail(owner, "tiers", names, "must have unique names")
        longest = self.nominal_period_ms
        for tier in self.effective_tiers:
            if tier.long_window_ms > longest:
                raise _fail(
                    owner,
                    f"tier {tier.name} long_window_ms",
                    tier.long_window_ms,
                    f"must fit in the period ({longest} ms)",
                )

    @property
    def nominal_period_ms(self) -> int:
        """The rolling period, or a calendar period's typical length (for tier factors)."""
        if self.period_ms is not None:
            return self.period_ms
        assert self.calendar is not None
        return _NOMINAL_CALENDAR_MS[self.calendar.kind.value]

    @property
    def effective_tiers(self) -> tuple[BurnRateTier, ...]:
        return self.tiers or workbook_tiers(self.nominal_period_ms)

    @property
    def error_budget(self) -> float:
        return 1.0 - self.target


_NOMINAL_CALENDAR_MS: Mapping[str, int] = MappingProxyType(
    {
        "hourly": HOUR_MS,
        "daily": DAY_MS,
        "weekly": 7 * DAY_MS,
        "monthly": 30 * DAY_MS,
        "quarterly": 91 * DAY_MS,
        "annual": 365 * DAY_MS,
    }
)
