"""Turn a parsed SLO-policy file into kernel config values, layered as `parsing` says: shape
detection, the SLO steps every shape shares, and guardstream's own shape (the seeds' shapes are
in `slo_seeds`, OpenSLO in `slo_openslo`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from schemas.state import BudgetPeriod
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.slo_config import BurnRateTier, Sli, SloConfig
from workers.kernels.slo_targets_config import (
    DegradationAction,
    DegradationStrategy,
    DegradationTrigger,
    ObjectiveMetric,
    SlaContract,
    SlaPenalty,
    WindowObjective,
)
from workers.policies.files import Problems
from workers.policies.parsing import build, validate_entry, validated_entries
from workers.policies.slo_models import (
    DURATION_RULE,
    GuardCalendar,
    GuardContract,
    GuardObjective,
    GuardSlo,
    GuardSloDefaults,
    GuardSpec,
    GuardStrategy,
    GuardTier,
    parse_duration,
)

OPENSLO_DOCUMENTS = "openslo_documents"
"""Key under which a multi-document OpenSLO file travels (a policy spec is one JSON object)."""
GUARD_MARKERS = ("slos", "objectives", "sla_contracts")
RES_MARKERS = ("service_level_objectives",)
ALPHA_MARKERS = ("contracts", "performance_targets")
OPENSLO_MARKERS = ("apiVersion", OPENSLO_DOCUMENTS)
CALENDAR_KINDS = tuple(p.value for p in BudgetPeriod if p is not BudgetPeriod.ROLLING)
# Which objectives are fractions of calls (checked to be <= 1 in guardstream's shape).
FRACTION_METRICS = (ObjectiveMetric.AVAILABILITY, ObjectiveMetric.ERROR_RATE)
# Objectives whose direction needs no saying; the others must state higher_is_better.
DIRECTIONS: Mapping[ObjectiveMetric, bool] = MappingProxyType(
    {
        ObjectiveMetric.AVAILABILITY: True,
        ObjectiveMetric.ERROR_RATE: False,
        ObjectiveMetric.LATENCY_QUANTILE: False,
    }
)


class Shape(StrEnum):
    GUARDSTREAM = "guardstream"
    RESONTINEX = "resontinex"
    ALPHA_SOLVER = "alpha-solver"
    OPENSLO = "openslo"


def detect(spec: Mapping[str, Any]) -> Shape | str:
    """The shape of `spec`, or why it has none (a file holds exactly one shape)."""
    found = [
        shape
        for shape, markers in (
            (Shape.OPENSLO, OPENSLO_MARKERS),
            (Shape.RESONTINEX, RES_MARKERS),
            (Shape.ALPHA_SOLVER, ALPHA_MARKERS),
            (Shape.GUARDSTREAM, GUARD_MARKERS),
        )
        if any(key in spec for key in markers)
    ]
    if len(found) > 1:
        names = " and ".join(s.value for s in found)
        return f"mixes the {names} shapes; keep one shape per file"
    if found:
        return found[0]
    if "degradation_strategies" in spec:  # guardstream's shape with strategies only
        return Shape.GUARDSTREAM
    return (
        "has no `slos` / `objectives` / `sla_contracts` (guardstream), "
        "`service_level_objectives` (RESONTINEX), `contracts` / `performance_targets` "
        "(alpha-solver) or `apiVersion: openslo/v1` (OpenSLO)"
    )


@dataclass
class Built:
    """What a shape's parser produced, in the file's order."""

    slos: list[SloConfig] = field(default_factory=list)
    objectives: list[WindowObjective] = field(default_factory=list)
    contracts: list[SlaContract] = field(default_factory=list)
    strategies: list[DegradationStrategy] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    """`<path>: <why>` for each seed entry that is loaded but cannot be measured."""
    unsupported_ids: set[str] = field(default_factory=set)
    declared_ids: set[str] = field(default_factory=set)
    """Every SLO / objective key of the file, built or not (a trigger naming one that failed
    to build is not reported again: its own error says what is wrong)."""

    def add(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, SloConfig):
            self.slos.append(value)
        elif isinstance(value, WindowObjective):
            self.objectives.append(value)
        elif isinstance(value, SlaContract):
            self.contracts.append(value)
        else:
            assert isinstance(value, DegradationStrategy)
            self.strategies.append(value)

    def unsupported_entry(self, path: str, why: str, entry_id: str | None = None) -> None:
        self.unsupported.append(f"{path}: {why}")
        if entry_id is not None:
            self.unsupported_ids.add(entry_id)

    def measured_ids(self) -> set[str]:
        return {s.slo_id for s in self.slos} | {o.objective_id for o in self.objectives}


# --- shared steps ---


def calendar_spec(
    kind: str, tz: str, week_start: int | None, path: str, problems: Problems
) -> PeriodSpec | None:
    if kind not in CALENDAR_KINDS:
        problems.error(path, "must be one of " + "|".join(CALENDAR_KINDS), kind)
        return None
    fields: dict[str, Any] = {"tz": tz}
    if week_start is not None:
        fields["week_start"] = week_start
    return build(PeriodSpec, problems, path, kind=BudgetPeriod(kind), **fields)


def period_of(
    raw: Any, tz: str, path: str, problems: Problems
) -> tuple[int | None, PeriodSpec | None] | None:
    """guardstream's `period`: "30d" (rolling) or {calendar: monthly, tz, week_start}."""
    if isinstance(raw, str):
        ms = parse_duration(raw)
        if ms is None:
            problems.error(path, DURATION_RULE + ", or {calendar: monthly, tz: ...}", raw)
            return None
        return ms, None
    if isinstance(raw, dict):
        cal = validate_entry(GuardCalendar, raw, problems, *path.split("."))
        if cal is None:
            return None
        spec = calendar_spec(
            cal.calendar, cal.tz or tz, cal.week_start, f"{path}.calendar", problems
        )
        return None if spec is None else (None, spec)
    problems.error(path, "must be a rolling duration (30d) or {calendar: monthly, tz: ...}", raw)
    return None


def check_triggers(built: Built, problems: Problems, paths: Mapping[tuple[str, int], str]) -> None:
    """Every degradation trigger names an SLO or objective of this file that is measured."""
    known = built.measured_ids()
    for strategy in built.strategies:
        for i, trigger in enumerate(strategy.triggers):
            path = paths[(strategy.strategy_id, i)]
            name = trigger.objective_id
            if name in built.unsupported_ids:
                problems.error(path, "names an objective guardstream cannot measure", name)
            elif name not in known and name not in built.declared_ids:
                problems.error(path, "must name an SLO or objective of this file", name)


def trigger_paths(
    sid: str, path: str, triggers_key: str, objective_key: str, count: int
) -> dict[tuple[str, int], str]:
    """Where each of a strategy's triggers names its objective, for `check_triggers`."""
    return {(sid, i): f"{path}.{triggers_key}[{i}].{objective_key}" for i in range(count)}


def strategy(
    sid: str,
    triggers: list[tuple[str, int]],
    actions: list[tuple[str, str, str]],
    target: str | None,
    path: str,
    triggers_key: str,
    problems: Problems,
) -> DegradationStrategy | None:
    built_triggers = [
        build(
            DegradationTrigger,
            problems,
            f"{path}.{triggers_key}[{i}]",
            objective_id=objective,
            breach_duration_ms=duration_ms,
        )
        for i, (objective, duration_ms) in enumerate(triggers)
    ]
    if any(t is None for t in built_triggers):
        return None
    fields: dict[str, Any] = {
        "strategy_id": sid,
        "triggers": tuple(built_triggers),
        "actions": tuple(DegradationAction(type=t, parameter=p, value=v) for t, p, v in actions),
    }
    if target is not None:
        fields["target"] = target
    return build(DegradationStrategy, problems, path, **fields)


def check_unique(
    built: Built, problems: Problems, slo_path: str = "slos", objective_path: str = "objectives"
) -> None:
    """SLO and objective ids are one namespace: a degradation trigger names either."""
    seen: set[str] = set()
    for path, ids in (
        (slo_path, [s.slo_id for s in built.slos]),
        (objective_path, [o.objective_id for o in built.objectives]),
    ):
        for name in ids:
            if name in seen:
                problems.error(path, "ids must be unique across SLOs and objectives", name)
            seen.add(name)


# --- guardstream's shape ---


def parse_guardstream_slos(model: GuardSpec, base: Mapping[str, Any], problems: Problems) -> Built:
    """guardstream's slos.yaml: the kernel's field names, durations as "5m" / "30d"."""
    built = Built()
    built.declared_ids.update(model.slos, model.objectives)
    defaults = validate_entry(GuardSloDefaults, model.defaults, problems, "defaults")
    layered: dict[str, Any] = dict(base)
    if defaults is not None:
        layered.update(_slo_fields(defaults, base, "defaults", problems))
    for sid, path, entry in validated_entries(GuardSlo, "slos", model.slos, problems):
        before = len(problems.errors)
        fields = {**layered, **_slo_fields(entry, base, path, problems)}
        sli = build(Sli, problems, f"{path}.sli", **_sli_fields(entry))
        if len(problems.errors) == before and defaults is not None:
            built.add(_slo(sid, entry, sli, fields, path, problems))
    objectives = validated_entries(GuardObjective, "objectives", model.objectives, problems)
    for oid, path, objective in objectives:
        built.add(_objective(oid, objective, base, path, problems))
    contracts = validated_entries(GuardContract, "sla_contracts", model.sla_contracts, problems)
    for cid, path, contract in contracts:
        built.add(_contract(cid, contract, base, path, problems))
    strategies = validated_entries(
        GuardStrategy, "degradation_strategies", model.degradation_strategies, problems
    )
    paths: dict[tuple[str, int], str] = {}
    for gid, path, entry_s in strategies:
        triggers = [(t.objective, t.breach_duration) for t in entry_s.triggers]
        actions = [(a.type, a.parameter, a.value) for a in entry_s.actions]
        paths |= trigger_paths(gid, path, "triggers", "objective", len(triggers))
        built.add(strategy(gid, triggers, actions, entry_s.target, path, "triggers", problems))
    check_unique(built, problems)
    check_triggers(built, problems, paths)
    return built


def _slo_fields(
    entry: GuardSloDefaults, base: Mapping[str, Any], path: str, problems: Problems
) -> dict[str, Any]:
    """The SloConfig fields an entry (or `defaults:`) sets, kernel names and units."""
    fields: dict[str, Any] = {}
    given = entry.model_fields_set
    if "period" in given:
        period = period_of(entry.period, base["tz"], f"{path}.period", problems)
        if period is not None:
            fields["period_ms"], fields["calendar"] = period
    renamed = {"timeslice": "timeslice_ms", "no_data": "no_data_ms"}
    for name in ("budgeting", "timeslice", "timeslice_target", "min_events", "no_data"):
        if name in given:
            fields[renamed.get(name, name)] = getattr(entry, name)
    if entry.group_by is not None:
        fields["group_by"] = entry.group_by
    if entry.tiers is not None:
        fields["tiers"] = _tiers(entry.tiers, f"{path}.tiers", problems)
    return fields


def _tiers(tiers: list[GuardTier], path: str, problems: Problems) -> tuple[BurnRateTier, ...]:
    built = [
        build(
            BurnRateTier,
            problems,
            f"{path}[{i}]",
            name=t.name,
            notify=t.notify,
            factor=t.factor,
            long_window_ms=t.long_window,
            short_window_ms=t.short_window,
        )
        for i, t in enumerate(tiers)
    ]
    return tuple(t for t in built if t is not None)


def _sli_fields(entry: GuardSlo) -> dict[str, Any]:
    sli = entry.sli
    fields: dict[str, Any] = {
        "kind": sli.kind,
        "excluded_error_types": sli.excluded_error_types,
        "latency_threshold_ms": sli.latency_threshold_ms,
    }
    if sli.latency_source is not None:
        fields["latency_source"] = sli.latency_source
    return fields


def _slo(
    sid: str,
    entry: GuardSlo,
    sli: Sli | None,
    fields: dict[str, Any],
    path: str,
    problems: Problems,
) -> SloConfig | None:
    if sli is None:
        return None
    fields = {k: v for k, v in fields.items() if k in _SLO_FIELDS}
    return build(
        SloConfig,
        problems,
        path,
        slo_id=sid,
        sli=sli,
        target=entry.target,
        description=entry.description,
        selector=MappingProxyType(dict(entry.selector)),
        sla_tier=entry.sla_tier,
        **fields,
    )


_SLO_FIELDS = frozenset(
    {
        "period_ms",
        "calendar",
        "budgeting",
        "timeslice_ms",
        "timeslice_target",
        "min_events",
        "no_data_ms",
        "group_by",
        "tiers",
    }
)


def _objective(
    oid: str, entry: GuardObjective, base: Mapping[str, Any], path: str, problems: Problems
) -> WindowObjective | None:
    higher = entry.higher_is_better
    if higher is None:
        higher = DIRECTIONS.get(entry.metric)
        if higher is None:
            problems.error(
                f"{path}.higher_is_better", f"is required for metric {entry.metric.value}"
            )
            return None
    if entry.metric in FRACTION_METRICS:
        for name in ("target", "warning_at", "critical_at"):
            value = getattr(entry, name)
            if value > 1:
                problems.error(f"{path}.{name}", "must be a fraction 0-1 for this metric", value)
                return None
    fields: dict[str, Any] = {
        "objective_id": oid,
        "metric": entry.metric,
        "window_ms": entry.window,
        "target": entry.target,
        "warning_at": entry.warning_at,
        "critical_at": entry.critical_at,
        "higher_is_better": higher,
        "quantile": entry.quantile,
        "attribute": entry.attribute,
        "excluded_error_types": entry.excluded_error_types,
        "selector": MappingProxyType(dict(entry.selector)),
        "group_by": entry.group_by,
        "min_events": base["min_events"] if entry.min_events is None else entry.min_events,
        "description": entry.description,
    }
    if entry.latency_source is not None:
        fields["latency_source"] = entry.latency_source
    return build(WindowObjective, problems, path, **fields)


def default_selector(tier: str) -> Mapping[str, str]:
    """Calls of a contract's customers: the gateway tags each with its customer's tier."""
    return MappingProxyType({"attributes.sla_tier": tier})


def _contract(
    cid: str, entry: GuardContract, base: Mapping[str, Any], path: str, problems: Problems
) -> SlaContract | None:
    period = PeriodSpec(BudgetPeriod.MONTHLY, tz=base["tz"])
    if entry.period is not None:
        cal = entry.period
        found = calendar_spec(
            cal.calendar, cal.tz or base["tz"], cal.week_start, f"{path}.period", problems
        )
        if found is None:
            return None
        period = found
    penalties = tuple(
        SlaPenalty(
            breach_type=p.breach_type, threshold=p.threshold, credit_percent=p.credit_percent
        )
        for p in entry.penalties
    )
    fields: dict[str, Any] = {
        "contract_id": cid,
        "tier": entry.tier,
        "availability_percent": entry.availability_percent,
        "response_time_p50_ms": entry.response_time_p50_ms,
        "response_time_p99_ms": entry.response_time_p99_ms,
        "period": period,
        "penalties": penalties,
        "selector": default_selector(entry.tier)
        if entry.selector is None
        else MappingProxyType(dict(entry.selector)),
        "group_by": entry.group_by,
        "excluded_error_types": entry.excluded_error_types,
        "description": entry.description,
    }
    if entry.latency_source is not None:
        fields["latency_source"] = entry.latency_source
    return build(SlaContract, problems, path, **fields)
