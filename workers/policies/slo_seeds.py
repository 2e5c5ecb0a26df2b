"""The seeds' SLO files as guardstream objectives, contracts and strategies.

RESONTINEX's slo.yaml: each `service_level_objectives` entry is a WindowObjective whose
metric follows from its unit and id (see `_res_metric`); `degradation_strategies` become
DegradationStrategies; `monitoring_config` is reported, not evaluated.

alpha-solver's sla_contracts.yaml: `contracts` become SlaContracts, `performance_targets`
WindowObjectives (a latency target gives a p50 and a p99 objective, warning at the target and
critical at twice it unless `critical_p50_ms` / `critical_p99_ms` say otherwise; a
requests-per-second target gives a minimum and/or a maximum throughput objective in calls per
minute, critical at half the minimum / twice the maximum unless `critical_min` /
`critical_max` (per second) say otherwise). A target without `measurement_window` uses 5m.

What a seed states but guardstream cannot measure from its input events is kept in
`Built.unsupported` with the reason; what it states but guardstream does not evaluate (support
hours, monitoring intervals) is a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from schemas.state import BudgetPeriod
from workers.kernels.slo_targets_config import (
    BreachType,
    ObjectiveMetric,
    SlaContract,
    SlaPenalty,
    WindowObjective,
)
from workers.policies.fields import extra_keys
from workers.policies.files import Problems
from workers.policies.parsing import NOT_EVALUATED, build, note_unknown_keys, validated_entries
from workers.policies.slo_models import (
    MINUTE_MS,
    AlphaContract,
    AlphaPenalty,
    AlphaSpec,
    AlphaTarget,
    ResSlo,
    ResSpec,
    ResStrategy,
)
from workers.policies.slo_shapes import (
    CALENDAR_KINDS,
    FRACTION_METRICS,
    Built,
    calendar_spec,
    check_triggers,
    check_unique,
    default_selector,
    strategy,
    trigger_paths,
)

# --- RESONTINEX's slo.yaml ---

_QUANTILE_SUFFIX = re.compile(r"_p([0-9]{2})$")
# Unit suffixes of target_<unit> / alert_threshold_<unit> / critical_threshold_<unit>; ""
# is a bare `target` (a fraction).
RES_UNITS = ("", "_ms", "_mb", "_requests_per_minute", "_percentage", "_per_hour")
_ATTRIBUTE_WORDS = ("quality", "score", "efficiency", "improvement")
MEMORY_ATTRIBUTE = "memory_mb"
"""The event attribute a `target_mb` quantile reads (RESONTINEX reports memory in MB)."""
CB_TRIPS_WHY = (
    "counts circuit-breaker trips per hour; trips are guardstream's own output "
    "(breaker-state), not input events, so there is nothing to measure (alert on "
    "breaker-state transitions instead)"
)


def parse_resontinex_slo(model: ResSpec, base: Mapping[str, Any], problems: Problems) -> Built:
    """RESONTINEX's slo.yaml (see the module docstring)."""
    built = Built()
    note_unknown_keys(problems, model)
    built.declared_ids.update(model.service_level_objectives)
    problems.note(
        "service_level_objectives",
        "the seed names no selector: every objective covers all events (add a `selector` "
        "in guardstream's shape to narrow one)",
    )
    objectives = validated_entries(
        ResSlo, "service_level_objectives", model.service_level_objectives, problems
    )
    for sid, path, entry in objectives:
        built.add(_res_objective(sid, entry, base, path, built, problems))
    for key, value in model.monitoring_config.items():
        problems.note(
            f"monitoring_config.{key}",
            f"{value!r}: objectives are evaluated on every event and clock tick and alert "
            "through guardstream's alert pipeline; not evaluated",
        )
    strategies = validated_entries(
        ResStrategy, "degradation_strategies", model.degradation_strategies, problems
    )
    paths: dict[tuple[str, int], str] = {}
    for gid, path, entry_s in strategies:
        note_unknown_keys(problems, entry_s, path)
        triggers = [
            (t.slo, _minutes_ms(t.threshold_breach_duration_minutes))
            for t in entry_s.trigger_conditions
        ]
        actions = [(a.type, a.parameter, a.value) for a in entry_s.actions]
        paths |= trigger_paths(gid, path, "trigger_conditions", "slo", len(triggers))
        built.add(strategy(gid, triggers, actions, None, path, "trigger_conditions", problems))
    check_unique(built, problems, objective_path="service_level_objectives")
    check_triggers(built, problems, paths)
    return built


def _minutes_ms(minutes: float) -> int:
    return round(Decimal(str(minutes)) * MINUTE_MS)


def _res_thresholds(
    sid: str, entry: ResSlo, path: str, problems: Problems
) -> tuple[str, float, float, float] | None:
    """(unit, target, alert, critical): exactly one target_<unit> and its two thresholds."""
    fields = {**extra_keys(entry)}
    units = [u for u in RES_UNITS if f"target{u}" in fields]
    if len(units) != 1:
        known = ", ".join(f"target{u}" for u in RES_UNITS)
        problems.error(path, f"must have exactly one of {known}", sorted(fields))
        return None
    unit = units[0]
    values = []
    for name in (f"target{unit}", f"alert_threshold{unit}", f"critical_threshold{unit}"):
        value = fields.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.error(f"{path}.{name}", "must be a number >= 0", value)
            return None
        values.append(float(value))
    known_keys = {f"{n}{unit}" for n in ("target", "alert_threshold", "critical_threshold")}
    for key in fields:
        if key not in known_keys:
            problems.note(f"{path}.{key}", NOT_EVALUATED)
    return unit, values[0], values[1], values[2]


def _res_metric(sid: str, unit: str) -> tuple[ObjectiveMetric, bool, float | None, str | None]:
    """(metric, higher_is_better, quantile, attribute) from the unit and the id, or raise
    ValueError with why it cannot be measured."""
    quantile_match = _QUANTILE_SUFFIX.search(sid)
    quantile = int(quantile_match.group(1)) / 100 if quantile_match else None
    if unit == "_per_hour":
        raise ValueError(CB_TRIPS_WHY if "circuit_breaker" in sid else "a count per hour")
    if unit == "_ms" and quantile is not None:
        return ObjectiveMetric.LATENCY_QUANTILE, False, quantile, None
    if unit == "_mb" and quantile is not None:
        return ObjectiveMetric.ATTRIBUTE_QUANTILE, False, quantile, MEMORY_ATTRIBUTE
    if unit == "_requests_per_minute":
        return ObjectiveMetric.THROUGHPUT, True, None, None
    if unit == "":
        if "availability" in sid:
            return ObjectiveMetric.AVAILABILITY, True, None, None
        if "error_rate" in sid:
            return ObjectiveMetric.ERROR_RATE, False, None, None
    if unit in ("", "_percentage") and any(word in sid for word in _ATTRIBUTE_WORDS):
        return ObjectiveMetric.ATTRIBUTE_MEAN, True, None, sid
    raise ValueError(
        f"target{unit} on an id that says neither availability, error_rate, a _pNN quantile, "
        "nor quality/score/efficiency/improvement: which metric it is cannot be told"
    )


def _res_objective(
    sid: str,
    entry: ResSlo,
    base: Mapping[str, Any],
    path: str,
    built: Built,
    problems: Problems,
) -> WindowObjective | None:
    found = _res_thresholds(sid, entry, path, problems)
    if found is None:
        return None
    unit, target, warning, critical = found
    try:
        metric, higher, quantile, attribute = _res_metric(sid, unit)
    except ValueError as why:
        built.unsupported_entry(path, str(why), sid)
        return None
    if metric in FRACTION_METRICS and max(target, warning, critical) > 1:
        problems.error(
            path, f"{metric.value} thresholds must be fractions 0-1", [target, warning, critical]
        )
        return None
    return build(
        WindowObjective,
        problems,
        path,
        objective_id=sid,
        metric=metric,
        window_ms=_minutes_ms(entry.measurement_window_minutes),
        target=target,
        warning_at=warning,
        critical_at=critical,
        higher_is_better=higher,
        quantile=quantile,
        attribute=attribute,
        min_events=base["min_events"],
        description=entry.description,
    )


# --- alpha-solver's sla_contracts.yaml ---

ALPHA_FILE_KEYS = ("version", "schema_version")
DEFAULT_PERF_WINDOW_MS = 5 * MINUTE_MS
"""Window of a performance target that names none (the seed's latency target says 5m)."""
PER_SECOND_TO_MINUTE = 60
"""requests_per_second targets become THROUGHPUT objectives in calls per minute (x 60)."""
_CONTRACT_TERMS = {
    "support_hours": "support hours are a staffing commitment",
    "escalation_time_minutes": "escalation time is a support-process commitment",
    "dedicated_support": "dedicated support is a staffing commitment",
    "custom_metrics": "custom metrics name no metric guardstream could evaluate",
}
_AUTOSCALE_WHY = (
    "autoscaling acts on the serving fleet; guardstream sees calls, not replicas or capacity, "
    "and has no scaler to drive"
)


def parse_alpha_solver_sla_contracts(
    model: AlphaSpec, base: Mapping[str, Any], problems: Problems
) -> Built:
    """alpha-solver's sla_contracts.yaml (see the module docstring)."""
    built = Built()
    note_unknown_keys(problems, model, skip=ALPHA_FILE_KEYS)
    for cid, path, entry in validated_entries(
        AlphaContract, "contracts", model.contracts, problems
    ):
        built.add(_alpha_contract(cid, entry, base, path, built, problems))
    targets = validated_entries(
        AlphaTarget, "performance_targets", model.performance_targets, problems
    )
    for tid, path, target in targets:
        for objective in _alpha_targets(tid, target, base, path, built, problems):
            built.add(objective)
    check_unique(built, problems, objective_path="performance_targets")
    return built


def _alpha_contract(
    cid: str,
    entry: AlphaContract,
    base: Mapping[str, Any],
    path: str,
    built: Built,
    problems: Problems,
) -> SlaContract | None:
    before = len(problems.errors)
    if entry.id is not None and entry.id != cid:
        problems.error(f"{path}.id", f"must equal the contract's key {cid!r}", entry.id)
    for key, value in extra_keys(entry).items():
        why = _CONTRACT_TERMS.get(key)
        if why is not None:
            built.unsupported_entry(
                f"{path}.{key}", f"{value!r}: {why}, not measurable from call events"
            )
        else:
            problems.note(f"{path}.{key}", NOT_EVALUATED)
    tz = entry.tz or entry.timezone or "UTC"
    if entry.measurement_period is None:
        problems.note(f"{path}.measurement_period", f"none: monthly in {tz}")
    kind = entry.measurement_period or BudgetPeriod.MONTHLY.value
    if kind not in CALENDAR_KINDS:
        problems.error(
            f"{path}.measurement_period", "must be one of " + "|".join(CALENDAR_KINDS), kind
        )
        return None
    period = calendar_spec(kind, tz, None, f"{path}.measurement_period", problems)
    penalties = [
        _alpha_penalty(p, f"{path}.penalties[{i}]", problems) for i, p in enumerate(entry.penalties)
    ]
    if len(problems.errors) > before or period is None:
        return None
    selector = (
        default_selector(entry.tier)
        if entry.selector is None
        else MappingProxyType(dict(entry.selector))
    )
    return build(
        SlaContract,
        problems,
        path,
        contract_id=cid,
        tier=entry.tier,
        availability_percent=entry.availability,
        response_time_p50_ms=entry.response_time_p50_ms,
        response_time_p99_ms=entry.response_time_p99_ms,
        period=period,
        penalties=tuple(p for p in penalties if p is not None),
        selector=selector,
    )


def _alpha_penalty(entry: AlphaPenalty, path: str, problems: Problems) -> SlaPenalty | None:
    # availability: `threshold` in percent; response_time: `threshold_p99_ms`.
    name = "threshold" if entry.breach_type is BreachType.AVAILABILITY else "threshold_p99_ms"
    other = "threshold_p99_ms" if name == "threshold" else "threshold"
    if getattr(entry, other) is not None:
        problems.error(f"{path}.{other}", f"is not for {entry.breach_type.value} breaches")
        return None
    threshold = getattr(entry, name)
    if threshold is None:
        problems.error(f"{path}.{name}", "is required")
        return None
    if entry.breach_type is BreachType.AVAILABILITY and threshold > 100:
        problems.error(f"{path}.{name}", "must be a percentage <= 100", threshold)
        return None
    return build(
        SlaPenalty,
        problems,
        path,
        breach_type=entry.breach_type,
        threshold=threshold,
        credit_percent=entry.credit_percent,
    )


def _alpha_targets(
    tid: str,
    entry: AlphaTarget,
    base: Mapping[str, Any],
    path: str,
    built: Built,
    problems: Problems,
) -> list[WindowObjective | None]:
    if entry.id is not None and entry.id != tid:
        problems.error(f"{path}.id", f"must equal the target's key {tid!r}", entry.id)
        return []
    for key in extra_keys(entry):
        if key.startswith(("autoscale", "scale_")):
            built.unsupported_entry(f"{path}.{key}", _AUTOSCALE_WHY)
        else:
            problems.note(f"{path}.{key}", NOT_EVALUATED)
    if entry.breaching_action is not None:
        why = "objectives alert when breached" if entry.breaching_action == "alert" else ""
        problems.note(
            f"{path}.breaching_action", f"{entry.breaching_action!r}: {why or NOT_EVALUATED}"
        )
    window = entry.measurement_window
    if window is None:
        window = DEFAULT_PERF_WINDOW_MS
        problems.note(f"{path}.measurement_window", "none: 5m")
    common: dict[str, Any] = {
        "window_ms": window,
        "selector": MappingProxyType(dict(entry.selector)),
        "min_events": base["min_events"],
    }
    if entry.metric == "latency":
        return _alpha_latency(tid, entry, common, path, problems)
    if entry.metric == "requests_per_second":
        return _alpha_throughput(tid, entry, common, path, problems)
    built.unsupported_entry(
        f"{path}.metric",
        f"{entry.metric!r}: only latency and requests_per_second targets are measured",
        tid,
    )
    return []


def _alpha_latency(
    tid: str, entry: AlphaTarget, common: dict[str, Any], path: str, problems: Problems
) -> list[WindowObjective | None]:
    found = [
        (q, getattr(entry, f"target_p{q}_ms"), getattr(entry, f"critical_p{q}_ms"))
        for q in (50, 99)
        if getattr(entry, f"target_p{q}_ms") is not None
    ]
    if not found:
        problems.error(path, "a latency target needs target_p50_ms and/or target_p99_ms")
        return []
    return [
        build(
            WindowObjective,
            problems,
            f"{path}.target_p{q}_ms",
            objective_id=f"{tid}.p{q}",
            metric=ObjectiveMetric.LATENCY_QUANTILE,
            quantile=q / 100,
            target=target,
            warning_at=target,
            critical_at=2 * target if critical is None else critical,
            higher_is_better=False,
            **common,
        )
        for q, target, critical in found
    ]


def _alpha_throughput(
    tid: str, entry: AlphaTarget, common: dict[str, Any], path: str, problems: Problems
) -> list[WindowObjective | None]:
    # Per second in the seed, per minute in guardstream; the critical level is twice as far
    # from the target as the warning one (half the minimum, double the maximum) unless given.
    found: list[WindowObjective | None] = []
    for bound, higher, factor in (("min", True, 0.5), ("max", False, 2.0)):
        per_second = getattr(entry, f"target_{bound}")
        if per_second is None:
            continue
        critical_per_second = getattr(entry, f"critical_{bound}")
        target = per_second * PER_SECOND_TO_MINUTE
        critical = (
            target * factor
            if critical_per_second is None
            else critical_per_second * PER_SECOND_TO_MINUTE
        )
        found.append(
            build(
                WindowObjective,
                problems,
                f"{path}.target_{bound}",
                objective_id=f"{tid}.{bound}",
                metric=ObjectiveMetric.THROUGHPUT,
                target=target,
                warning_at=target,
                critical_at=critical,
                higher_is_better=higher,
                **common,
            )
        )
    if not found:
        problems.error(path, "a requests_per_second target needs target_min and/or target_max")
    return found
