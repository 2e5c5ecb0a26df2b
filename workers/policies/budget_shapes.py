"""Turn a parsed budget-policy file into kernel BudgetConfigs, layered as `parsing` says:
shape detection, the budget steps every shape shares, and guardstream's and alpha-solver's
shapes (RESONTINEX's, which maps whole sections rather than budget entries, is in
budget_resontinex)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

from workers.errors import ConfigError
from workers.kernels.budget_config import (
    SCOPE_FIELDS,
    AnomalyConfig,
    BudgetConfig,
    RapidConsumptionConfig,
    RateLimits,
    Threshold,
    ThresholdAction,
    TripwireConfig,
)
from workers.policies.budget_models import (
    AlphaAlert,
    AlphaBudget,
    AlphaScope,
    AlphaSpec,
    GuardBudget,
    GuardDefaults,
    GuardSpec,
    GuardThreshold,
    GuardTripwire,
)
from workers.policies.fields import extra_keys
from workers.policies.files import Problems
from workers.policies.parsing import NOT_EVALUATED, build, validate_entry, validated_entries

# The seeds' alpha-solver says `department`; guardstream's events say `team`.
SEED_FIELD_ALIASES: Mapping[str, str] = {"department": "team"}
# Top-level keys of alpha-solver's file that describe the file, not a budget.
ALPHA_FILE_KEYS = ("version", "schema_version", "last_updated")
ALPHA_MARKERS = ("schema_version", "last_updated", "cost_allocation")
RES_MARKERS = ("budget_limits", "budget_tripwire")


class Shape(StrEnum):
    GUARDSTREAM = "guardstream"
    ALPHA_SOLVER = "alpha-solver"
    RESONTINEX = "resontinex"


def detect(spec: Mapping[str, Any]) -> Shape | str:
    """The shape of `spec`, or why it has none. The markers do not overlap: only RESONTINEX
    has `budget_limits` / `budget_tripwire` (and no `budgets`), and guardstream's shape
    forbids alpha-solver's `schema_version` / `last_updated` / `cost_allocation`."""
    if any(k in spec for k in RES_MARKERS):
        if "budgets" in spec:
            return "has both `budgets` and RESONTINEX's `budget_limits`; keep one shape per file"
        return Shape.RESONTINEX
    if "budgets" not in spec:
        return "has no `budgets` (guardstream, alpha-solver) or `budget_limits` (RESONTINEX)"
    if any(k in spec for k in ALPHA_MARKERS):
        return Shape.ALPHA_SOLVER
    return Shape.GUARDSTREAM


# --- shared steps ---


def build_thresholds(
    entries: Sequence[tuple[Decimal, ThresholdAction, tuple[str, ...], Any]],
    path: str,
    problems: Problems,
) -> tuple[Threshold, ...]:
    built = []
    for i, (percent, action, notify, severity) in enumerate(entries):
        threshold = _make_threshold(percent, action, notify, severity, f"{path}[{i}]", problems)
        if threshold is not None:
            built.append(threshold)
    return tuple(built)


def _make_threshold(
    percent: Decimal,
    action: ThresholdAction,
    notify: tuple[str, ...],
    severity: Any,
    path: str,
    problems: Problems,
) -> Threshold | None:
    try:
        return Threshold.of(percent, action, notify, severity)
    except ConfigError as exc:
        problems.error(path, str(exc))
        return None


def _scope(values: Mapping[str, str], path: str, problems: Problems) -> dict[str, str]:
    """Scope entries with known field names; an unknown one is an error at its own path."""
    scope: dict[str, str] = {}
    for key, value in values.items():
        if key not in SCOPE_FIELDS:
            problems.error(
                f"{path}.{key}", "unknown scope field; one of " + ", ".join(SCOPE_FIELDS), key
            )
        else:
            scope[key] = value
    return scope


def percent_of(fraction: float) -> Decimal:
    """0.7 -> 70 (exact from the decimal text; 70, not 70.0, when whole)."""
    pct = Decimal(str(fraction)) * 100
    return Decimal(int(pct)) if pct == pct.to_integral_value() else pct.normalize()


def to_ms(hours_or_minutes: float, unit_ms: int) -> int:
    return round(Decimal(str(hours_or_minutes)) * unit_ms)


# --- guardstream's shape ---


def _guard_fields(entry: GuardDefaults, path: str, problems: Problems) -> dict[str, Any]:
    fields = {name: getattr(entry, name) for name in entry.model_fields_set}
    if entry.thresholds is not None:
        fields["thresholds"] = _guard_thresholds(entry.thresholds, path, problems)
    if isinstance(entry, GuardBudget):
        if "scope" in fields:
            fields["scope"] = _scope(entry.scope, f"{path}.scope", problems)
        parts = (
            ("rate_limits", RateLimits),
            ("anomaly", AnomalyConfig),
            ("rapid_consumption", RapidConsumptionConfig),
        )
        for name, cls in parts:
            part = getattr(entry, name)
            if part is not None:
                dumped = part.model_dump(exclude_unset=True)
                fields[name] = build(cls, problems, f"{path}.{name}", **dumped)
    return fields


def _guard_thresholds(
    entries: Sequence[GuardThreshold], path: str, problems: Problems
) -> tuple[Threshold, ...]:
    rows = [(t.percent, t.action, t.notify, t.severity) for t in entries]
    return build_thresholds(rows, f"{path}.thresholds", problems)


def parse_guardstream_budgets(
    model: GuardSpec, base: Mapping[str, Any], problems: Problems
) -> dict[str, BudgetConfig | None]:
    """guardstream's budgets.yaml: BudgetConfig's own field names under `budgets`."""
    defaults = _guard_fields(model.defaults, "defaults", problems)
    defaults_ok = not problems.errors
    tripwires = _guard_tripwires(model, problems)
    built: dict[str, BudgetConfig | None] = {}
    for bid, path, entry in validated_entries(GuardBudget, "budgets", model.budgets, problems):
        before = len(problems.errors)
        fields = {**base, **defaults, **_guard_fields(entry, path, problems)}
        fields["tripwire"] = tripwires.get(bid)
        if defaults_ok and len(problems.errors) == before:
            # Only when its parts are sound: building with a failed part would report an echo.
            built[bid] = build(BudgetConfig, problems, path, budget_id=bid, **fields)
    return built


def _guard_tripwires(model: GuardSpec, problems: Problems) -> dict[str, TripwireConfig | None]:
    tripwires: dict[str, TripwireConfig | None] = {}
    for target, raw in model.tripwires.items():
        path = f"tripwires.{target}"
        if target not in model.budgets:
            problems.error(path, "must be keyed by a budget in budgets", target)
            continue
        entry = validate_entry(GuardTripwire, raw, problems, "tripwires", target)
        if entry is not None:
            dumped = entry.model_dump(exclude_unset=True)
            tripwires[target] = build(TripwireConfig, problems, path, target=target, **dumped)
    return tripwires


# --- alpha-solver's budget_controls.yaml ---


def parse_alpha_solver_budget_controls(
    model: AlphaSpec, base: Mapping[str, Any], problems: Problems
) -> dict[str, BudgetConfig | None]:
    """alpha-solver's budget_controls.yaml (and its JSON schema's names and ranges)."""
    for key, value in extra_keys(model).items():
        if key == "cost_allocation":
            count = len(value) if isinstance(value, list) else 1
            problems.note(
                key,
                f"{count} chargeback tagging rule(s): cost attribution for reports, not a "
                "spend limit; not evaluated",
            )
        elif key not in ALPHA_FILE_KEYS:
            problems.note(key, NOT_EVALUATED)
    return {
        bid: _alpha_budget(bid, entry, base, path, problems)
        for bid, path, entry in validated_entries(AlphaBudget, "budgets", model.budgets, problems)
    }


def _alpha_budget(
    bid: str, entry: AlphaBudget, base: Mapping[str, Any], path: str, problems: Problems
) -> BudgetConfig | None:
    before = len(problems.errors)
    if entry.id is not None and entry.id != bid:
        problems.error(f"{path}.id", f"must equal the budget's key {bid!r}", entry.id)
    for key, value in extra_keys(entry).items():
        if key == "approved_tools":
            problems.note(
                f"{path}.{key}",
                f"{value!r}: tool approval is decided by a gateway before the call; kept here "
                "as a note, not evaluated",
            )
        else:
            problems.note(f"{path}.{key}", NOT_EVALUATED)
    for name in ("period", "limit_usd"):
        if getattr(entry, name) is None:
            problems.error(f"{path}.{name}", "is required")
    scope = _alpha_scope(entry, path, problems)
    fields: dict[str, Any] = dict(base)
    alerts = entry.alerts
    if alerts is None:
        problems.note(f"{path}.alerts", "none: the mode's default thresholds apply")
    else:
        fields["thresholds"] = build_thresholds(
            [_alpha_alert(a) for a in alerts], f"{path}.alerts", problems
        )
        # The seed has no hard/soft flag: a budget that says `halt` somewhere means to stop.
        fields["hard"] = any(a.action is ThresholdAction.HALT for a in alerts)
    if entry.rate_limits is not None:
        fields["rate_limits"] = build(
            RateLimits,
            problems,
            f"{path}.rate_limits",
            requests_per_minute=entry.rate_limits.requests_per_minute,
            tokens_per_minute=entry.rate_limits.tokens_per_minute,
        )
    optional = {
        "opening_spend_usd": entry.current_spend,
        "burst_allowance": entry.burst_allowance,
        "cost_per_unit": entry.cost_per_unit,
        "approval_required_above_usd": entry.approval_required_above,
        "tags": entry.tags,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    if len(problems.errors) > before or scope is None:
        return None
    return build(
        BudgetConfig,
        problems,
        path,
        budget_id=bid,
        scope=scope,
        period=entry.period,
        limit_usd=entry.limit_usd,
        **fields,
    )


def _alpha_alert(alert: AlphaAlert) -> tuple[Decimal, ThresholdAction, tuple[str, ...], None]:
    # `notify: [...]` without an action is a notification; an action may carry recipients too.
    action = alert.action or ThresholdAction.NOTIFY
    return alert.threshold_percent, action, alert.notify or (), None


def _alpha_scope(entry: AlphaBudget, path: str, problems: Problems) -> dict[str, str] | None:
    """The seed names the scope kind (`scope: vendor`) and its value in a field of that name
    (`vendor: openai`); its own example omits `scope:` where the field says it all."""
    values: dict[str, str] = {}
    for name in (*SCOPE_FIELDS, *SEED_FIELD_ALIASES):
        value = getattr(entry, name)
        if value is None:
            continue
        field = SEED_FIELD_ALIASES.get(name, name)
        if field in values:
            problems.error(f"{path}.{name}", f"duplicates the scope's {field!r}", value)
            return None
        if name in SEED_FIELD_ALIASES:
            problems.note(f"{path}.{name}", f"read as the event field `{field}`")
        values[field] = value
    kind = entry.scope
    if kind is AlphaScope.GLOBAL and values:
        problems.error(f"{path}.scope", f"is global, but the budget also names {values}", "global")
        return None
    if kind is None and not values:
        problems.error(f"{path}.scope", "is required (global, or a vendor/department/... value)")
        return None
    if kind is not None and kind is not AlphaScope.GLOBAL:
        field = SEED_FIELD_ALIASES.get(kind.value, kind.value)
        if field not in values:
            problems.error(f"{path}.{kind.value}", f"is required for scope {kind.value!r}")
            return None
    return values
