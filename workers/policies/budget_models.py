"""The three budget-policy shapes as pydantic models: syntax only (types, ranges, known keys).

Cross-field rules (at least one limit, unique thresholds, halt needs a hard budget, ...) stay
in the kernel's BudgetConfig, so they are written once; `budget_shapes` re-raises them with the
file and path. guardstream's shape forbids unknown keys (a typo must not silently fall back to
a default); the seed shapes allow them and the converters record a note for each.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import PlainValidator

from schemas.state import BudgetPeriod
from schemas.types import Severity
from workers.kernels.budget_config import ThresholdAction
from workers.kernels.policy_limits import MAX_POLICY_USD
from workers.policies.fields import (
    MAX_NANO_PLACES,
    OpenModel,
    OptBool,
    OptMoney,
    OptNonNegInt,
    OptPosInt,
    OptPosNumber,
    OptStrings,
    OptText,
    OptWeekday,
    ScalarText,
    StrictModel,
    Strings,
    Text,
    int_at_least,
    int_in,
    money_in,
    money_limit,
    number_in,
    positive_decimal,
)

_amount = money_in(MAX_POLICY_USD, places=MAX_NANO_PLACES, zero_ok=True)
"""A non-negative amount (spend so far may be zero), exact as written, bounded as a limit."""


def _seed_percent(value: Any) -> Decimal:
    """alpha-solver's schema: threshold_percent is an integer in [1, 100]."""
    return Decimal(_seed_percent_int(value))


_seed_percent_int = int_in(1, 100)


Money = Annotated[Decimal, PlainValidator(positive_decimal)]
OptLimit = Annotated[Decimal | None, PlainValidator(money_limit)]
"""An amount a budget counts against: whole nano-dollars, at most MAX_POLICY_USD."""
OptSeedLimit = Annotated[Decimal | None, PlainValidator(money_in(Decimal(1_000_000), places=9))]
"""alpha-solver's schema caps limit_usd at 1,000,000."""
SeedPercent = Annotated[Decimal, PlainValidator(_seed_percent)]
OptAmount = Annotated[Decimal | None, PlainValidator(_amount)]
Amount = Annotated[Decimal, PlainValidator(_amount)]
PosInt = Annotated[int, PlainValidator(int_at_least(1))]
NonNegInt = Annotated[int, PlainValidator(int_at_least(0))]
OptFactor = Annotated[float | None, PlainValidator(number_in(1, None, low_open=True))]
OptFraction = Annotated[float | None, PlainValidator(number_in(0, 1, low_open=True))]
Fraction = Annotated[float, PlainValidator(number_in(0, 1, low_open=True))]


# --- guardstream's shape: BudgetConfig's own field names, units in the names ---


class GuardThreshold(StrictModel):
    percent: Money
    action: ThresholdAction = ThresholdAction.NOTIFY
    notify: Strings = ()
    severity: Severity | None = None


class GuardRateLimits(StrictModel):
    requests_per_minute: OptPosInt = None
    tokens_per_minute: OptPosInt = None
    window_ms: OptPosInt = None


class GuardAnomaly(StrictModel):
    detection_window_ms: PosInt
    factor: OptFactor = None
    baseline_windows: OptPosInt = None


class GuardRapid(StrictModel):
    fraction: OptFraction = None
    window_ms: OptPosInt = None
    action: ThresholdAction | None = None


class GuardTripwire(StrictModel):
    breach_threshold_pct: Money
    consecutive_breach_limit: PosInt
    recovery_threshold_pct: Amount
    downgrade_parameters: dict[str, ScalarText]
    consecutive_normal_operations: OptPosInt = None
    time_since_last_breach_ms: OptNonNegInt = None
    check_interval_ms: OptPosInt = None


class GuardDefaults(StrictModel):
    """What every budget inherits unless it says otherwise."""

    tz: OptText = None
    week_start: OptWeekday = None
    grace_ms: OptNonNegInt = None
    hard: OptBool = None
    burst_allowance: OptMoney = None
    thresholds: list[GuardThreshold] | None = None


class GuardBudget(GuardDefaults):
    scope: dict[str, Text] = {}
    split_by: Strings = ()
    period: BudgetPeriod
    rolling_ms: OptPosInt = None
    limit_usd: OptLimit = None
    limit_tokens: OptPosInt = None
    opening_spend_usd: OptAmount = None
    rate_limits: GuardRateLimits | None = None
    anomaly: GuardAnomaly | None = None
    rapid_consumption: GuardRapid | None = None
    cost_per_unit: dict[str, Money] = {}
    approval_required_above_usd: OptLimit = None
    tags: Strings = ()


class GuardSpec(StrictModel):
    defaults: GuardDefaults = GuardDefaults()
    budgets: dict[str, dict[str, Any]]  # entries validated one by one: see budget_shapes
    tripwires: dict[str, dict[str, Any]] = {}  # keyed by the budget they watch


# --- alpha-solver's budget_controls.yaml (and its JSON schema) ---


class AlphaScope(StrEnum):
    GLOBAL = "global"
    VENDOR = "vendor"
    DEPARTMENT = "department"
    PROJECT = "project"
    USER = "user"


class AlphaAlert(OpenModel):
    threshold_percent: SeedPercent
    notify: OptStrings = None
    action: ThresholdAction | None = None


class AlphaRateLimits(OpenModel):
    requests_per_minute: OptPosInt = None
    tokens_per_minute: OptPosInt = None


class AlphaBudget(OpenModel):
    id: OptText = None
    scope: AlphaScope | None = None
    period: BudgetPeriod | None = None
    limit_usd: OptSeedLimit = None
    current_spend: OptAmount = None
    alerts: list[AlphaAlert] | None = None
    tags: OptStrings = None
    rate_limits: AlphaRateLimits | None = None
    cost_per_unit: dict[str, Money] | None = None
    burst_allowance: OptMoney = None
    approval_required_above: OptLimit = None
    # Scope values: the schema's scope kinds plus guardstream's other event fields.
    vendor: OptText = None
    department: OptText = None
    project: OptText = None
    user: OptText = None
    model: OptText = None
    team: OptText = None
    api_key_id: OptText = None
    org: OptText = None
    environment: OptText = None


class AlphaSpec(OpenModel):
    budgets: dict[str, dict[str, Any]]


# --- RESONTINEX's energy_governance.yaml ---


class ResLimits(OpenModel):
    daily_token_limit: OptPosInt = None
    daily_cost_limit_usd: OptLimit = None
    hourly_burst_limit: OptPosInt = None
    hourly_cost_limit_usd: OptLimit = None


class ResRecovery(OpenModel):
    consecutive_normal_operations: OptPosInt = None
    time_since_last_breach_hours: OptPosNumber = None


class ResTripwire(OpenModel):
    enabled: OptBool = None
    breach_threshold_percentage: Money
    consecutive_breach_limit: PosInt
    recovery_threshold_percentage: Amount
    downgrade_parameters: dict[str, ScalarText]
    recovery_conditions: ResRecovery = ResRecovery()
    check_interval_minutes: OptPosNumber = None
    """Not in the seed (whose check interval is implicit): guardstream's extension."""


class ResUtilizationAlert(OpenModel):
    threshold: Annotated[float, PlainValidator(number_in(0, 10, low_open=True))]
    """A fraction of the limit (0.70 = 70 %); up to 10 (1000 %), the kernel's cap."""
    alert_level: Severity | None = None


class ResAnomaly(OpenModel):
    enabled: OptBool = None
    anomaly_threshold_factor: OptFactor = None
    detection_window_hours: OptPosNumber = None


class ResMonitoring(OpenModel):
    budget_utilization_alerts: list[ResUtilizationAlert] | None = None
    cost_anomaly_detection: ResAnomaly | None = None


class ResApproval(OpenModel):
    single_operation_cost_usd: OptLimit = None


class ResRestrictions(OpenModel):
    rapid_budget_consumption_rate: OptFraction = None


class ResGovernance(OpenModel):
    approval_required_for: ResApproval = ResApproval()
    automatic_restrictions: ResRestrictions = ResRestrictions()


class ResSpec(OpenModel):
    # Sections validated one by one (budget_resontinex), so one's mistake hides no other's.
    budget_limits: dict[str, Any] = {}
    budget_tripwire: dict[str, Any] | None = None
    monitoring: dict[str, Any] = {}
    governance_rules: dict[str, Any] = {}
