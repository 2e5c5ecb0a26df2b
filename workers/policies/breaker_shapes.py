"""Turn a parsed breaker-policy file (any of the three shapes) into kernel BreakerConfigs,
layered as `parsing` says (kernel, mode, `defaults:`, the breaker's own entry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.limits import MAX_ID_LEN
from workers.kernels.breaker_config import (
    DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN,
    BreakerConfig,
    TripCondition,
    TripMetric,
    WindowType,
)
from workers.policies.breaker_models import (
    AlphaBreaker,
    AlphaSpec,
    GuardBreaker,
    GuardSpec,
    KeyMode,
    ResBreaker,
    ResSpec,
    ResTrip,
    Routing,
    Rule,
)
from workers.policies.files import Problems
from workers.policies.parsing import (
    SpecParser,
    build,
    note_unknown_keys,
    parse_by_shape,
    validated_as,
    validated_entries,
)

ALPHA_DEFAULT_ID = "cb.vendor.default"
# Why a RESONTINEX breaker key is not used, where there is more to say than "not evaluated".
_RES_BREAKER_KEYS = {
    "fast_fail_threshold": "no guardstream breaker field counts fast failures; not evaluated"
}


class Shape(StrEnum):
    GUARDSTREAM = "guardstream"
    ALPHA_SOLVER = "alpha-solver"
    RESONTINEX = "resontinex"


@dataclass(frozen=True, slots=True)
class Parsed:
    breakers: dict[str, BreakerConfig]
    disabled: frozenset[str]
    rules: tuple[Rule, ...]
    default: str
    key: KeyMode


def detect(spec: Mapping[str, Any]) -> Shape | str:
    """The shape of `spec`, or why it has none. The markers do not overlap: guardstream's
    shape forbids alpha-solver's `schema_version` / `states` / `global_config`, and only
    RESONTINEX names its section `circuit_breakers`."""
    if "circuit_breakers" in spec:
        if "breakers" in spec:
            return "has both `breakers` and `circuit_breakers`; keep one shape per file"
        return Shape.RESONTINEX
    if "breakers" not in spec:
        return "has no `breakers` (guardstream, alpha-solver) or `circuit_breakers` section"
    if any(k in spec for k in ("schema_version", "states", "global_config")):
        return Shape.ALPHA_SOLVER
    return Shape.GUARDSTREAM


def parse(spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems) -> Parsed | None:
    """The breakers of `spec` in whichever shape it has; None once a problem is recorded."""
    return parse_by_shape(spec, base, problems, detect(spec), PARSERS)


# --- shared steps ---


def _finish(
    model: Routing,
    section: str,
    declared: Sequence[str],
    built: dict[str, BreakerConfig | None],
    disabled: set[str],
    problems: Problems,
) -> Parsed | None:
    if not declared:
        problems.error(section, "must define at least one breaker", {})
        return None
    for bid in declared:
        # Breaker ids travel as Identifiers in breaker-state and audit records.
        if not bid or len(bid) > MAX_ID_LEN:
            problems.error(f"{section}.{bid}", f"id must be 1-{MAX_ID_LEN} characters", bid)
    for i, rule in enumerate(model.rules):
        if rule.breaker not in declared:
            problems.error(
                f"rules[{i}].breaker",
                f"must name a breaker in {section} ({', '.join(declared)})",
                rule.breaker,
            )
    default = model.default
    if default is not None and default not in declared:
        problems.error("default", f"must name a breaker in {section}", default)
    if default is None:
        # No explicit default: the seeds' conventional catch-all if present, else the first.
        default = ALPHA_DEFAULT_ID if ALPHA_DEFAULT_ID in declared else declared[0]
    if problems.errors:
        return None
    return Parsed(
        breakers={bid: config for bid, config in built.items() if config is not None},
        disabled=frozenset(disabled),
        rules=tuple(Rule(r.vendor, r.tool, r.breaker) for r in model.rules),
        default=default,
        key=model.key,
    )


def _set(
    fields: dict[str, Any], name: str, value: Any, convert: Callable[[Any], Any] = lambda v: v
) -> None:
    if value is not None:
        fields[name] = convert(value)


# --- guardstream's shape ---


def _guard_fields(entry: GuardBreaker, path: str, problems: Problems) -> dict[str, Any]:
    fields = {name: getattr(entry, name) for name in entry.model_fields_set}
    if entry.trip_conditions is not None:
        trips = [
            build(
                TripCondition,
                problems,
                f"{path}.trip_conditions[{i}]",
                **t.model_dump(exclude_unset=True),
            )
            for i, t in enumerate(entry.trip_conditions)
        ]
        fields["trip_conditions"] = tuple(t for t in trips if t is not None)
    return fields


def parse_guardstream_breakers(
    model: GuardSpec, base: Mapping[str, Any], problems: Problems
) -> Parsed | None:
    """guardstream's breakers.yaml: BreakerConfig's own field names under `breakers`."""
    defaults = _guard_fields(model.defaults, "defaults", problems)
    built: dict[str, BreakerConfig | None] = {}
    disabled: set[str] = set()
    for bid, path, entry in validated_entries(GuardBreaker, "breakers", model.breakers, problems):
        fields = {**base, **defaults, **_guard_fields(entry, path, problems)}
        if not fields.pop("enabled", True):
            disabled.add(bid)
        built[bid] = build(BreakerConfig, problems, path, policy_id=bid, **fields)
    return _finish(model, "breakers", list(model.breakers), built, disabled, problems)


# --- alpha-solver's circuit_breakers.json ---


def parse_alpha_solver_circuit_breakers(
    model: AlphaSpec, base: Mapping[str, Any], problems: Problems
) -> Parsed | None:
    """alpha-solver's circuit_breakers.json (its JSON schema's names and ranges)."""
    note_unknown_keys(
        problems,
        model,
        why={"states": "the kernel's state machine (Resilience4j's) is used; ignored"},
        skip=("version", "schema_version"),
    )
    note_unknown_keys(problems, model.global_config, "global_config")
    built: dict[str, BreakerConfig | None] = {}
    for bid, path, entry in validated_entries(AlphaBreaker, "breakers", model.breakers, problems):
        if entry.id is not None and entry.id != bid:
            problems.error(f"{path}.id", f"must equal the breaker's key {bid!r}", entry.id)
        note_unknown_keys(problems, entry, path)
        fields = dict(base)
        _set(fields, "failure_threshold", entry.failure_threshold)
        _set(fields, "success_threshold", entry.success_threshold)
        _set(fields, "wait_in_open_ms", entry.timeout_seconds, lambda s: s * 1000)
        if entry.monitoring_window_seconds is not None:
            fields["sliding_window_type"] = WindowType.TIME
            fields["sliding_window_size"] = entry.monitoring_window_seconds
        fields["permitted_calls_in_half_open"] = _half_open_calls(
            entry.success_threshold, entry.half_open_requests, path, problems
        )
        _set(fields, "error_types", entry.error_types)
        _set(fields, "exclude_errors", entry.exclude_errors)
        _set(fields, "cost_threshold_usd", entry.cost_threshold_usd)
        _set(fields, "fallback_action", entry.fallback_action)
        _set(fields, "alert_on_open", entry.alert_on_open)
        built[bid] = build(BreakerConfig, problems, path, policy_id=bid, **fields)
    disabled = set(model.breakers) if model.global_config.enabled is False else set()
    return _finish(model, "breakers", list(model.breakers), built, disabled, problems)


def _half_open_calls(
    success: int | None, requests: int | None, path: str, problems: Problems
) -> int:
    """The kernel closes HALF_OPEN after `success_threshold` successful trial calls, so it must
    permit at least that many. alpha-solver's schema lets half_open_requests (max 10) be below
    success_threshold (max 100), as in its own cb.tool.critical (1 < 5): there it limits trial
    calls in flight, which a gateway enforces, not a stream. We keep the seed loadable and say
    so in a note rather than reject the example the format was published with."""
    needed = success or 0
    if requests is None:
        return max(needed, DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN)
    if needed > requests:
        problems.note(
            f"{path}.half_open_requests",
            f"{requests} is below success_threshold {needed}; read as a limit on concurrent "
            f"trial calls (a gateway's job), so permitted_calls_in_half_open = {needed}",
        )
        return needed
    return requests


# --- RESONTINEX's circuit_breakers.yaml ---


def parse_resontinex_circuit_breakers(
    model: ResSpec, base: Mapping[str, Any], problems: Problems
) -> Parsed | None:
    """RESONTINEX's circuit_breakers.yaml (count windows, trip conditions by metric name)."""
    note_unknown_keys(problems, model)
    note_unknown_keys(
        problems,
        model.alerting,
        "alerting",
        otherwise="guardstream alerts on opening only; ignored",
    )
    note_unknown_keys(
        problems,
        model.alerting.circuit_open,
        "alerting.circuit_open",
        otherwise="alert routing is not a breaker setting; ignored",
    )
    built: dict[str, BreakerConfig | None] = {}
    disabled: set[str] = set()
    entries = validated_entries(ResBreaker, "circuit_breakers", model.circuit_breakers, problems)
    for bid, path, entry in entries:
        note_unknown_keys(problems, entry, path, why=_RES_BREAKER_KEYS)
        fields = {**base, "sliding_window_type": WindowType.COUNT}
        _set(fields, "failure_threshold", entry.failure_threshold)
        _set(fields, "wait_in_open_ms", entry.recovery_timeout_seconds, lambda s: s * 1000)
        _set(fields, "permitted_calls_in_half_open", entry.half_open_max_calls)
        _set(fields, "success_threshold", entry.success_threshold)
        _set(fields, "consecutive_success_threshold", entry.consecutive_success_threshold)
        _set(fields, "sliding_window_size", entry.sliding_window_size)
        _set(fields, "minimum_number_of_calls", entry.minimum_throughput)
        _set(fields, "alert_severity", model.alerting.circuit_open.severity)
        trips = [
            _res_trip(t, f"{path}.trip_conditions[{i}]", problems)
            for i, t in enumerate(entry.trip_conditions or ())
        ]
        fields["trip_conditions"] = tuple(t for t in trips if t is not None)
        if entry.enabled is False:
            disabled.add(bid)
        built[bid] = build(BreakerConfig, problems, path, policy_id=bid, **fields)
    return _finish(
        model, "circuit_breakers", list(model.circuit_breakers), built, disabled, problems
    )


def _res_trip(trip: ResTrip, path: str, problems: Problems) -> TripCondition | None:
    """Map a RESONTINEX metric name onto the signals tool events carry (see TripMetric)."""
    name = trip.metric
    note_unknown_keys(problems, trip, path)
    if name.endswith("latency_p95") or (trip.threshold_ms is not None and "p95" in name):
        metric = TripMetric.LATENCY_P95
    elif name.endswith("_latency_ms") and trip.threshold_ms is not None:
        metric = TripMetric.LATENCY_P95
        problems.note(path, f"{name} names no percentile; evaluated as the p95 of call latency")
    elif name.endswith(("_success_rate", "_accuracy_rate")):
        metric = TripMetric.SUCCESS_RATE
        if name.endswith("_accuracy_rate"):
            problems.note(path, f"{name} is evaluated as the success rate of calls")
    elif name.endswith("_error_rate"):
        metric = TripMetric.ERROR_RATE
    else:
        problems.note(path, f"{name} is not derived from tool events; not evaluated")
        return None
    unit = "threshold_ms" if metric is TripMetric.LATENCY_P95 else "threshold"
    threshold = trip.threshold_ms if unit == "threshold_ms" else trip.threshold
    if threshold is None:
        problems.error(f"{path}.{unit}", f"is required for {metric} metric {name!r}")
        return None
    fields: dict[str, Any] = {"metric": metric, "threshold": threshold, "name": name}
    _set(fields, "consecutive_violations", trip.consecutive_violations)
    _set(fields, "window_ms", trip.window_minutes, lambda m: m * 60_000)
    return build(TripCondition, problems, path, **fields)


PARSERS: Mapping[Shape, SpecParser[Parsed]] = {
    Shape.GUARDSTREAM: validated_as(GuardSpec, parse_guardstream_breakers),
    Shape.ALPHA_SOLVER: validated_as(AlphaSpec, parse_alpha_solver_circuit_breakers),
    Shape.RESONTINEX: validated_as(ResSpec, parse_resontinex_circuit_breakers),
}
