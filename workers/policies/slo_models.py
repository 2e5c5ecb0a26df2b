"""The SLO-policy shapes as pydantic models: syntax only (types, ranges, known keys).

Cross-field rules (a latency SLI needs a threshold, critical past warning, ...) stay in the
kernel's config values (workers.kernels.slo_config, slo_targets_config), so they are written
once; `slo_shapes` re-raises them with the file and path. guardstream's own shape and the
`guardstream` metric source of OpenSLO forbid unknown keys (a typo must not silently fall back
to a default); the seed shapes allow them and the converters report each one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainValidator

from workers.kernels.slo_config import BudgetingMethod, LatencySource, Notify, SliKind
from workers.kernels.slo_targets_config import BreachType, ObjectiveMetric
from workers.policies.fields import (
    OpenModel,
    OptBool,
    OptNonNegInt,
    OptPosNumber,
    OptStrings,
    OptStringSet,
    OptText,
    OptWeekday,
    ScalarText,
    StrictModel,
    Strings,
    StringSet,
    Text,
    number,
    number_in,
    rule_error,
)

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
DURATION_UNITS = {"s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}
_DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
DURATION_RULE = "must be a duration: a whole number and a unit s, m, h or d (90s, 5m, 1h, 30d)"
TARGET_RULE = "must be a fraction strictly between 0 and 1 (write 99.9 % as 0.999)"


def parse_duration(value: Any) -> int | None:
    """ "30d" -> 2_592_000_000; None if `value` is not a duration string."""
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def _duration(value: Any) -> int:
    ms = parse_duration(value)
    if ms is None:
        raise rule_error(DURATION_RULE)
    return ms


def _target(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise rule_error(TARGET_RULE)
    return float(value)


def _non_negative(value: Any) -> float:
    result = number(value)
    if result < 0:
        raise rule_error("must be a number >= 0")
    return result


Duration = Annotated[int, PlainValidator(_duration)]
OptDuration = Annotated[int | None, PlainValidator(_duration)]
Target = Annotated[float, PlainValidator(_target)]
OptTarget = Annotated[float | None, PlainValidator(_target)]
Number = Annotated[float, PlainValidator(_non_negative)]
OptNumber = Annotated[float | None, PlainValidator(_non_negative)]
PosNumber = Annotated[float, PlainValidator(number_in(0, None, low_open=True))]
Percent = Annotated[float, PlainValidator(number_in(0, 100, low_open=True))]
OptQuantile = Annotated[float | None, PlainValidator(number_in(0, 1, low_open=True))]


# --- guardstream's shape: the kernel's field names, durations as "5m" / "30d" ---


class GuardSli(StrictModel):
    kind: SliKind
    excluded_error_types: StringSet = frozenset()
    latency_threshold_ms: OptPosNumber = None
    latency_source: LatencySource | None = None


class GuardTier(StrictModel):
    name: Text
    notify: Notify
    factor: PosNumber
    long_window: Duration
    short_window: Duration


class GuardSloDefaults(StrictModel):
    """What every SLO inherits unless it says otherwise."""

    period: Any = None  # "30d" or {calendar, tz, week_start}: see slo_shapes.period_of
    budgeting: BudgetingMethod | None = None
    timeslice: OptDuration = None
    timeslice_target: OptTarget = None
    min_events: OptNonNegInt = None
    no_data: OptDuration = None
    tiers: list[GuardTier] | None = None
    group_by: OptStrings = None


class GuardSlo(GuardSloDefaults):
    sli: GuardSli
    target: Target
    description: str = ""
    selector: dict[str, Text] = {}
    sla_tier: OptText = None


class GuardCalendar(StrictModel):
    calendar: Text
    tz: OptText = None
    week_start: OptWeekday = None


class GuardObjective(StrictModel):
    metric: ObjectiveMetric
    window: Duration
    target: Number
    warning_at: Number
    critical_at: Number
    higher_is_better: OptBool = None
    quantile: OptQuantile = None
    attribute: OptText = None
    latency_source: LatencySource | None = None
    excluded_error_types: StringSet = frozenset()
    selector: dict[str, Text] = {}
    group_by: Strings = ()
    min_events: OptNonNegInt = None
    description: str = ""


class GuardPenalty(StrictModel):
    breach_type: BreachType
    threshold: PosNumber
    credit_percent: Percent


class GuardContract(StrictModel):
    tier: Text
    availability_percent: Percent
    response_time_p50_ms: OptPosNumber = None
    response_time_p99_ms: OptPosNumber = None
    period: GuardCalendar | None = None
    penalties: list[GuardPenalty] = []
    selector: dict[str, Text] | None = None
    group_by: Strings = ()
    excluded_error_types: StringSet = frozenset()
    latency_source: LatencySource | None = None
    description: str = ""


class GuardTrigger(StrictModel):
    objective: Text
    breach_duration: Duration


class GuardAction(StrictModel):
    type: Text
    parameter: Text
    value: ScalarText


class GuardStrategy(StrictModel):
    triggers: list[GuardTrigger]
    actions: list[GuardAction]
    target: OptText = None


class GuardSpec(StrictModel):
    # Entries validated one by one (slo_shapes), so one entry's typo hides no other's error.
    defaults: dict[str, Any] = {}
    slos: dict[str, dict[str, Any]] = {}
    objectives: dict[str, dict[str, Any]] = {}
    sla_contracts: dict[str, dict[str, Any]] = {}
    degradation_strategies: dict[str, dict[str, Any]] = {}


# --- RESONTINEX's slo.yaml ---


class ResSlo(OpenModel):
    """One service_level_objectives entry: a target_<unit> with alert_/critical_threshold_<unit>
    (no unit suffix for fractions); which metric it is follows from the unit and the id."""

    measurement_window_minutes: PosNumber
    description: str = ""


class ResTrigger(OpenModel):
    slo: Text
    threshold_breach_duration_minutes: Number


class ResAction(OpenModel):
    type: Text
    parameter: Text
    value: ScalarText


class ResStrategy(OpenModel):
    trigger_conditions: list[ResTrigger]
    actions: list[ResAction]


class ResSpec(OpenModel):
    service_level_objectives: dict[str, dict[str, Any]]
    monitoring_config: dict[str, Any] = {}
    degradation_strategies: dict[str, dict[str, Any]] = {}


# --- alpha-solver's sla_contracts.yaml ---


class AlphaPenalty(OpenModel):
    breach_type: BreachType
    threshold: OptPosNumber = None
    threshold_p99_ms: OptPosNumber = None
    credit_percent: Percent


class AlphaContract(OpenModel):
    id: OptText = None
    tier: Text
    availability: Percent
    response_time_p50_ms: OptPosNumber = None
    response_time_p99_ms: OptPosNumber = None
    measurement_period: OptText = None
    tz: OptText = None
    timezone: OptText = None
    penalties: list[AlphaPenalty] = []
    selector: dict[str, Text] | None = None


class AlphaTarget(OpenModel):
    id: OptText = None
    metric: Text
    measurement_window: OptDuration = None
    # latency
    target_p50_ms: OptPosNumber = None
    target_p99_ms: OptPosNumber = None
    critical_p50_ms: OptPosNumber = None
    critical_p99_ms: OptPosNumber = None
    # requests_per_second
    target_min: OptPosNumber = None
    target_max: OptPosNumber = None
    critical_min: OptPosNumber = None
    critical_max: OptPosNumber = None
    breaching_action: OptText = None
    selector: dict[str, Text] = {}


class AlphaSpec(OpenModel):
    contracts: dict[str, dict[str, Any]] = {}
    performance_targets: dict[str, dict[str, Any]] = {}


# --- OpenSLO v1 ---


class OsMetadata(OpenModel):
    name: Text
    displayName: OptText = None


class OsGuardSource(StrictModel):
    """guardstream's convention for `metricSource.spec` (metricSource.type: guardstream)."""

    selector: dict[str, Text] = {}
    group_by: Strings = ()
    sli: SliKind | None = None
    latency_threshold_ms: OptPosNumber = None
    latency_source: LatencySource | None = None
    excluded_error_types: OptStringSet = None


class OsMetricSource(OpenModel):
    type: Text
    spec: dict[str, Any] = {}


class OsMetric(OpenModel):
    metricSource: OsMetricSource


class OsRatio(OpenModel):
    counter: OptBool = None
    good: OsMetric | None = None
    bad: OsMetric | None = None
    total: OsMetric


class OsIndicatorSpec(OpenModel):
    ratioMetric: OsRatio | None = None
    thresholdMetric: dict[str, Any] | None = None


class OsIndicator(OpenModel):
    metadata: dict[str, Any] = {}
    spec: OsIndicatorSpec


class OsTimeWindow(OpenModel):
    duration: Text
    isRolling: OptBool = None
    calendar: dict[str, Any] | None = None


class OsObjective(OpenModel):
    name: OptText = None
    displayName: OptText = None
    target: OptTarget = None
    timeSliceTarget: OptTarget = None
    timeSliceWindow: OptText = None


class OsSloSpec(OpenModel):
    description: str = ""
    service: OptText = None
    indicator: OsIndicator | None = None
    indicatorRef: OptText = None
    timeWindow: list[OsTimeWindow]
    budgetingMethod: Text
    objectives: list[OsObjective]
    alertPolicies: list[Any] | None = None


class OsDocument(OpenModel):
    apiVersion: Text
    kind: Text
    metadata: OsMetadata
    spec: dict[str, Any]
