"""Window objectives, SLA contracts and degradation strategies (issue 5): immutable config.

Besides burn-rate SLOs (`slo_config`), the seeds state objectives as a metric over a
measurement window compared with an alert and a critical threshold (RESONTINEX's slo.yaml:
availability 0.995 with alert 0.990 and critical 0.985 over 60 minutes; p95 latency 2000 ms
with 3000 / 5000), SLA contracts per tier (alpha-solver's sla_contracts.yaml: availability and
p50/p99 response time over a calendar month, credits by breach level) and degradation
strategies (RESONTINEX: when an objective stays breached for N minutes, set parameters).
No I/O; the policy loader builds these, the kernels read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from schemas.limits import MAX_ID_LEN, MAX_LIST_ITEMS, MAX_TEXT_LEN
from schemas.state import BudgetPeriod
from workers.errors import ConfigError
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.checks import check_int, preview
from workers.kernels.policy_limits import (
    MAX_COUNT,
    MAX_LATENCY_MS,
    MAX_OBJECTIVE_WINDOW_MS,
    MAX_POLICY_DURATION_MS,
)
from workers.kernels.slo_config import (
    ATTRIBUTE_PREFIX,
    DEFAULT_MIN_EVENTS,
    SELECTOR_FIELDS,
    LatencySource,
    check_fraction,
    check_positive,
    check_selector,
)


class ObjectiveMetric(StrEnum):
    AVAILABILITY = "availability"
    """Successful / valid calls over the window (higher is better)."""
    ERROR_RATE = "error_rate"
    """Failed / valid calls over the window (lower is better)."""
    LATENCY_QUANTILE = "latency_quantile"
    """The `quantile` of latencies in the window, from a mergeable sketch (lower is better)."""
    THROUGHPUT = "throughput"
    """Valid calls per minute over the window (direction set by `higher_is_better`)."""
    ATTRIBUTE_MEAN = "attribute_mean"
    """Mean of a numeric event attribute, `attributes[attribute]` (e.g. a quality score)."""
    ATTRIBUTE_QUANTILE = "attribute_quantile"
    """The `quantile` of a numeric event attribute (e.g. memory_mb p95)."""


class Level(StrEnum):
    """Where an objective's value stands; ordered OK < WARNING < CRITICAL."""

    OK = "ok"
    WARNING = "warning"
    """Past `warning_at` (the seeds' alert_threshold)."""
    CRITICAL = "critical"
    """Past `critical_at`."""


def _fail(owner: str, name: str, value: object, rule: str) -> ConfigError:
    shown = value.value if isinstance(value, StrEnum) else value
    return ConfigError(f"{owner} {name} {rule}, not {preview(shown)}")


def _check_id(kind: str, value: str) -> None:
    if not value or len(value) > MAX_ID_LEN:
        raise _fail(kind, "id", value, f"must be 1-{MAX_ID_LEN} characters")


def _check_group_by(owner: str, group_by: tuple[str, ...]) -> None:
    for name in group_by:
        if name not in SELECTOR_FIELDS and not name.startswith(ATTRIBUTE_PREFIX):
            raise _fail(owner, "group_by", name, "must name an event field")


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowObjective:
    """A metric over a sliding window of event time, compared with two thresholds.

    "Past" a threshold means below it when higher is better (availability, throughput
    minimum, quality), above it otherwise (error rate, latency, throughput maximum).
    `target` is what the objective aims for (reported, never alerted on by itself).
    """

    objective_id: str
    metric: ObjectiveMetric
    window_ms: int
    target: float
    warning_at: float
    critical_at: float
    higher_is_better: bool
    quantile: float | None = None
    """LATENCY_QUANTILE / ATTRIBUTE_QUANTILE: 0.95 for p95."""
    attribute: str | None = None
    """ATTRIBUTE_*: the attribute name (without "attributes.")."""
    latency_source: LatencySource = LatencySource.DURATION
    excluded_error_types: frozenset[str] = frozenset()
    selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    group_by: tuple[str, ...] = ()
    min_events: int = DEFAULT_MIN_EVENTS
    """Fewer values than this in the window: no verdict (level stays as it was evaluated
    last, OK at first), except THROUGHPUT, where few calls is the very thing measured."""
    description: str = ""

    def __post_init__(self) -> None:
        _check_id("objective", self.objective_id)
        owner = f"objective {self.objective_id!r}"
        if not isinstance(self.metric, ObjectiveMetric):
            raise _fail(owner, "metric", self.metric, "must be one of " + "|".join(ObjectiveMetric))
        check_int(owner, "window_ms", self.window_ms, 1000, MAX_OBJECTIVE_WINDOW_MS)
        for name in ("target", "warning_at", "critical_at"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise _fail(owner, name, value, "must be a finite number >= 0")
        # The critical threshold must be at least as far past the target as the warning one.
        if not self.is_past(self.critical_at, self.warning_at) and (
            self.critical_at != self.warning_at
        ):
            rule = "<=" if self.higher_is_better else ">="
            raise _fail(owner, "critical_at", self.critical_at, f"must be {rule} warning_at")
        quantiled = self.metric in (
            ObjectiveMetric.LATENCY_QUANTILE,
            ObjectiveMetric.ATTRIBUTE_QUANTILE,
        )
        if quantiled:
            check_fraction(owner, "quantile", self.quantile)
        elif self.quantile is not None:
            raise _fail(owner, "quantile", self.quantile, "is only for quantile metrics")
        attributed = self.metric in (
            ObjectiveMetric.ATTRIBUTE_MEAN,
            ObjectiveMetric.ATTRIBUTE_QUANTILE,
        )
        if attributed and not self.attribute:
            raise _fail(owner, "attribute", self.attribute, "is required for attribute metrics")
        if not attributed and self.attribute is not None:
            raise _fail(owner, "attribute", self.attribute, "is only for attribute metrics")
        check_selector(owner, self.selector)
        _check_group_by(owner, self.group_by)
        check_int(owner, "min_events", self.min_events, 0, MAX_COUNT)

    def is_past(self, value: float, threshold: float) -> bool:
        """`value` is past `threshold` (below it when higher is better, above it otherwise)."""
        return value < threshold if self.higher_is_better else value > threshold


class BreachType(StrEnum):
    AVAILABILITY = "availability"
    RESPONSE_TIME = "response_time"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPenalty:
    """A service credit owed when the period's figure is past `threshold`: availability in
    percent below `threshold` (99.5), or p99 response time above `threshold` ms (2000)."""

    breach_type: BreachType
    threshold: float
    credit_percent: float

    def __post_init__(self) -> None:
        check_positive("penalty", "threshold", self.threshold)
        check_positive("penalty", "credit_percent", self.credit_percent)
        if self.credit_percent > 100:
            raise _fail("penalty", "credit_percent", self.credit_percent, "must be <= 100")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaContract:
    """One SLA tier: availability (percent) and p50/p99 response times over a calendar
    period. At period close an audited report states the figures, which targets were met and
    the credit owed (the largest applicable availability credit plus the largest response-time
    credit); during the period the state projects the same report from the figures so far."""

    contract_id: str
    tier: str
    availability_percent: float
    response_time_p50_ms: float | None = None
    response_time_p99_ms: float | None = None
    period: PeriodSpec = field(default_factory=lambda: PeriodSpec(BudgetPeriod.MONTHLY))
    penalties: tuple[SlaPenalty, ...] = ()
    selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Which calls the contract covers; the loader defaults it to
    {"attributes.sla_tier": tier} (the gateway tags each call with its customer's tier)."""
    group_by: tuple[str, ...] = ()
    excluded_error_types: frozenset[str] = frozenset()
    latency_source: LatencySource = LatencySource.DURATION
    description: str = ""

    def __post_init__(self) -> None:
        _check_id("sla contract", self.contract_id)
        owner = f"sla contract {self.contract_id!r}"
        if not self.tier:
            raise _fail(owner, "tier", self.tier, "must be a non-empty name")
        value = self.availability_percent
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
            raise _fail(owner, "availability_percent", value, "must be in (0, 100]")
        for name in ("response_time_p50_ms", "response_time_p99_ms"):
            if getattr(self, name) is not None:
                check_positive(owner, name, getattr(self, name), MAX_LATENCY_MS)
        if self.period.kind is BudgetPeriod.ROLLING:
            raise _fail(owner, "period", "rolling", "must be a calendar period")
        check_selector(owner, self.selector)
        _check_group_by(owner, self.group_by)


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradationTrigger:
    objective_id: str
    """A WindowObjective or burn-rate SLO id; breached = warning or worse / any tier firing."""
    breach_duration_ms: int

    def __post_init__(self) -> None:
        _check_id("trigger objective", self.objective_id)
        check_int(
            f"trigger {self.objective_id!r}",
            "breach_duration_ms",
            self.breach_duration_ms,
            0,
            MAX_POLICY_DURATION_MS,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradationAction:
    type: str
    parameter: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradationStrategy:
    """Active once any trigger's objective has been breached without interruption for its
    duration (event time): a `degrade` ControlCommand carries {parameter: value} of every
    action. Inactive again (an `undo` command naming the degrade command) once none of the
    triggers' objectives is breached."""

    strategy_id: str
    triggers: tuple[DegradationTrigger, ...]
    actions: tuple[DegradationAction, ...]
    target: str = "global"
    """Scope of the runtimes the commands address (the control topic's key)."""

    def __post_init__(self) -> None:
        _check_id("degradation strategy", self.strategy_id)
        owner = f"degradation strategy {self.strategy_id!r}"
        if not self.triggers:
            raise _fail(owner, "trigger_conditions", [], "must list at least one")
        if not self.actions:
            raise _fail(owner, "actions", [], "must list at least one")
        for name in ("triggers", "actions"):
            if len(getattr(self, name)) > MAX_LIST_ITEMS:
                rule = f"may list at most {MAX_LIST_ITEMS}"
                raise _fail(owner, name, len(getattr(self, name)), rule)
        # The actions become a ControlCommand's parameters (names are ids, values text).
        for action in self.actions:
            if not 0 < len(action.parameter) <= MAX_ID_LEN:
                rule = f"must be 1-{MAX_ID_LEN} characters"
                raise _fail(owner, "actions.parameter", action.parameter, rule)
            if len(action.value) > MAX_TEXT_LEN:
                rule = f"must be at most {MAX_TEXT_LEN} characters"
                raise _fail(owner, "actions.value", action.value, rule)
