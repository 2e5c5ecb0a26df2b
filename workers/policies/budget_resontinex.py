"""RESONTINEX's energy_governance.yaml as guardstream budgets.

budget_limits -> a daily and an hourly global budget (hard: a limit is a ceiling);
monitoring.budget_utilization_alerts -> thresholds on both; budget_tripwire,
cost_anomaly_detection, rapid_budget_consumption_rate and approval_required_for
.single_operation_cost_usd -> the daily budget (the hourly one is its burst guard; without a
daily limit they go to the hourly budget). Everything else becomes a note. Each section is
validated on its own, so a mistake in one does not hide another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.state import BudgetPeriod
from workers.kernels.budget_config import (
    DEFAULT_CHECK_INTERVAL_MS,
    AnomalyConfig,
    BudgetConfig,
    RapidConsumptionConfig,
    Threshold,
    ThresholdAction,
    TripwireConfig,
)
from workers.policies.budget_models import (
    ResGovernance,
    ResLimits,
    ResMonitoring,
    ResSpec,
    ResTripwire,
)
from workers.policies.budget_shapes import build_thresholds, percent_of, to_ms
from workers.policies.fields import extra_keys
from workers.policies.files import Problems
from workers.policies.parsing import NOT_EVALUATED, build, note_unknown_keys, validate_entry

MS_PER_HOUR = 3_600_000
MS_PER_MINUTE = 60_000
DAILY_ID = "bud.global.daily"
HOURLY_ID = "bud.global.hourly"
RAPID_WINDOW_MS = 15 * MS_PER_MINUTE
"""The seed's comment on rapid_budget_consumption_rate: "10% in 15 minutes"."""
RAPID_PATH = "governance_rules.automatic_restrictions.rapid_budget_consumption_rate"
_NO_HEALTH_CHECK = "no health-check signal reaches guardstream; not evaluated"


def parse_resontinex_energy_governance(
    model: ResSpec, base: Mapping[str, Any], problems: Problems
) -> dict[str, BudgetConfig | None]:
    """RESONTINEX's energy_governance.yaml (see the module docstring)."""
    limits = validate_entry(ResLimits, model.budget_limits, problems, "budget_limits")
    monitoring = validate_entry(ResMonitoring, model.monitoring, problems, "monitoring")
    governance = validate_entry(ResGovernance, model.governance_rules, problems, "governance_rules")
    daily = limits is None or limits.daily_cost_limit_usd or limits.daily_token_limit
    target = DAILY_ID if daily else HOURLY_ID
    tripwire = _tripwire(model.budget_tripwire, target, problems)
    if limits is None or monitoring is None or governance is None:
        return {}
    _notes(model, limits, monitoring, governance, problems)
    common: dict[str, Any] = {**base, "hard": True}
    thresholds = _thresholds(monitoring, problems)
    if thresholds is not None:
        common["thresholds"] = thresholds
    periods = {
        DAILY_ID: (BudgetPeriod.DAILY, limits.daily_cost_limit_usd, limits.daily_token_limit),
        HOURLY_ID: (BudgetPeriod.HOURLY, limits.hourly_cost_limit_usd, limits.hourly_burst_limit),
    }
    budgets = {
        bid: {**common, "period": period, "limit_usd": usd, "limit_tokens": tokens}
        for bid, (period, usd, tokens) in periods.items()
        if usd is not None or tokens is not None
    }
    if not budgets:
        problems.error("budget_limits", "must set a daily_* or hourly_* limit", {})
        return {}
    if thresholds is not None and len(budgets) > 1:
        problems.note("monitoring.budget_utilization_alerts", f"applied to {', '.join(budgets)}")
    main = budgets[target]
    main["tripwire"] = tripwire
    main["anomaly"] = _anomaly(monitoring, problems)
    rate = governance.automatic_restrictions.rapid_budget_consumption_rate
    if rate is not None:
        # Listed under automatic_restrictions: it throttles rather than only alerting.
        main["rapid_consumption"] = build(
            RapidConsumptionConfig,
            problems,
            RAPID_PATH,
            fraction=rate,
            window_ms=RAPID_WINDOW_MS,
            action=ThresholdAction.THROTTLE,
        )
    approval = governance.approval_required_for.single_operation_cost_usd
    if approval is not None:
        main["approval_required_above_usd"] = approval
    if problems.errors:
        return {}
    return {
        bid: build(BudgetConfig, problems, "budget_limits", budget_id=bid, **fields)
        for bid, fields in budgets.items()
    }


def _thresholds(monitoring: ResMonitoring, problems: Problems) -> tuple[Threshold, ...] | None:
    alerts = monitoring.budget_utilization_alerts
    if alerts is None:
        return None
    path = "monitoring.budget_utilization_alerts"
    for i, alert in enumerate(alerts):
        for key in extra_keys(alert):
            why = "alerts carry guardstream's own summary" if key == "message" else NOT_EVALUATED
            problems.note(f"{path}[{i}].{key}", f"{why}; not used")
    # `threshold` is a fraction of the limit, `alert_level` the alert's severity.
    rows = [(percent_of(a.threshold), ThresholdAction.NOTIFY, (), a.alert_level) for a in alerts]
    return build_thresholds(rows, path, problems)


def _tripwire(
    raw: Mapping[str, Any] | None, target: str, problems: Problems
) -> TripwireConfig | None:
    if raw is None:
        return None
    entry = validate_entry(ResTripwire, raw, problems, "budget_tripwire")
    if entry is None:
        return None
    if entry.enabled is False:
        problems.note("budget_tripwire.enabled", "false: no tripwire")
        return None
    note_unknown_keys(problems, entry, "budget_tripwire")
    recovery = entry.recovery_conditions
    note_unknown_keys(
        problems,
        recovery,
        "budget_tripwire.recovery_conditions",
        why={"system_health_check_passed": _NO_HEALTH_CHECK},
    )
    fields: dict[str, Any] = {
        "target": target,
        "breach_threshold_pct": entry.breach_threshold_percentage,
        "consecutive_breach_limit": entry.consecutive_breach_limit,
        "recovery_threshold_pct": entry.recovery_threshold_percentage,
        "downgrade_parameters": entry.downgrade_parameters,
    }
    if recovery.consecutive_normal_operations is not None:
        fields["consecutive_normal_operations"] = recovery.consecutive_normal_operations
    if recovery.time_since_last_breach_hours is not None:
        hours = recovery.time_since_last_breach_hours
        fields["time_since_last_breach_ms"] = to_ms(hours, MS_PER_HOUR)
    if entry.check_interval_minutes is not None:
        fields["check_interval_ms"] = to_ms(entry.check_interval_minutes, MS_PER_MINUTE)
    else:
        problems.note(
            "budget_tripwire",
            f"on {target}, checked every {DEFAULT_CHECK_INTERVAL_MS // MS_PER_MINUTE} min (the "
            "seed names no interval; check_interval_minutes sets one)",
        )
    return build(TripwireConfig, problems, "budget_tripwire", **fields)


def _anomaly(monitoring: ResMonitoring, problems: Problems) -> AnomalyConfig | None:
    seed = monitoring.cost_anomaly_detection
    path = "monitoring.cost_anomaly_detection"
    if seed is None:
        return None
    note_unknown_keys(
        problems, seed, path, why={"alert_on_anomaly": "anomalies always alert; ignored"}
    )
    if seed.enabled is False:
        problems.note(f"{path}.enabled", "false: no anomaly detection")
        return None
    if seed.detection_window_hours is None:
        problems.error(f"{path}.detection_window_hours", "is required")
        return None
    fields: dict[str, Any] = {
        "detection_window_ms": to_ms(seed.detection_window_hours, MS_PER_HOUR)
    }
    if seed.anomaly_threshold_factor is not None:
        fields["factor"] = seed.anomaly_threshold_factor
    return build(AnomalyConfig, problems, path, **fields)


def _notes(
    model: ResSpec,
    limits: ResLimits,
    monitoring: ResMonitoring,
    governance: ResGovernance,
    problems: Problems,
) -> None:
    """Everything RESONTINEX configures that is not a budget rule guardstream evaluates."""
    note_unknown_keys(problems, model)
    for key in extra_keys(limits):
        if key.startswith("max_"):
            why = "a per-operation cap is enforced before the call, by a gateway; not evaluated"
        elif "reserve" in key:
            why = "reserves are not separate budgets in guardstream; not evaluated"
        else:
            why = NOT_EVALUATED
        problems.note(f"budget_limits.{key}", why)
    sections = (
        ("monitoring", monitoring),
        ("governance_rules", governance),
        ("governance_rules.approval_required_for", governance.approval_required_for),
        ("governance_rules.automatic_restrictions", governance.automatic_restrictions),
    )
    for prefix, section in sections:
        note_unknown_keys(problems, section, prefix)
