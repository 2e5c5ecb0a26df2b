"""Published state (compacted topics breaker-state, budget-state, slo-state; Redis projection).

These are what gateways read (DESIGN §9), not necessarily everything a kernel keeps internally.
Rates and utilisations are fractions (0.25 = 25 %), money is exact Decimal (JSON string).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, RootModel

from schemas.base import WireModel
from schemas.limits import MAX_LIST_ITEMS
from schemas.types import (
    Attributes,
    Duration,
    EventTime,
    Fraction,
    Identifier,
    MoneyTotalUSD,
    MoneyUSD,
    PolicyVersion,
    ShortStr,
    SignedMoneyUSD,
    Text,
    TokenCount,
)


class CircuitState(StrEnum):
    """Resilience4j's states plus its special ones (forced open, disabled, metrics only)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"
    METRICS_ONLY = "metrics_only"


class BudgetAction(StrEnum):
    """What a gateway must do now for calls in a budget's scope."""

    ALLOW = "allow"
    THROTTLE = "throttle"
    HALT = "halt"


class BudgetPeriod(StrEnum):
    """Calendar-aligned periods (in the policy's time zone) or a rolling window."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    ROLLING = "rolling"


class BreakerState(WireModel):
    """State of one circuit breaker, published on every transition."""

    key: Identifier
    """Breaker key, by default "<vendor>/<tool>"; the Kafka key."""
    state: CircuitState
    since: EventTime
    """Event time of the transition into `state`."""
    retry_at: EventTime | None = None
    """While open: event time at which the breaker goes half-open."""
    attempt: int = Field(default=0, ge=0)
    """Consecutive openings without a full recovery (drives exponential backoff)."""
    failure_rate: Fraction = 0.0
    """Failed / recorded calls in the window (0 until the minimum number of calls)."""
    slow_call_rate: Fraction = 0.0
    calls_in_window: int = Field(default=0, ge=0)
    consecutive_failures: int = Field(default=0, ge=0)
    """Trips the breaker at the seeds' `failure_threshold`."""
    calls_while_open: int = Field(default=0, ge=0)
    """Calls rejected since the breaker opened."""
    fallback_action: ShortStr | None = None
    """What callers should do instead while open (seeds: use_cache...)."""
    reason: Text | None = None
    """Why the last transition happened, e.g. "failure_rate 0.62 >= 0.50"."""
    policy_id: Identifier
    """The breaker policy entry that governs this key (e.g. cb.vendor.default)."""
    policy_version: PolicyVersion
    updated_at: EventTime


class BudgetState(WireModel):
    """Spend of one budget in one period and the action gateways must take."""

    budget_id: Identifier
    scope: Attributes = Field(default_factory=dict)
    """Selector the budget applies to, e.g. {"team": "search"}; empty for global."""
    period: BudgetPeriod
    period_start: EventTime
    period_end: EventTime
    spent_usd: MoneyTotalUSD
    tokens: TokenCount = 0
    limit_usd: MoneyUSD | None = None
    limit_tokens: TokenCount | None = None
    remaining_usd: SignedMoneyUSD | None = None
    """limit_usd - spent_usd; negative when overspent."""
    utilization: float = Field(ge=0.0)
    """spent / limit as a fraction (may exceed 1); 0 when there is no limit."""
    projected_spend_usd: MoneyTotalUSD
    """Spend at period end at the current rate."""
    thresholds_crossed: list[int | float] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    """Alert thresholds crossed this period, in percent as the seeds write them (50, 80...)."""
    action: BudgetAction
    decided_by: ShortStr | None = None
    """Which rule set `action`, e.g. "threshold:95" or "rate_limit:tokens"."""
    rate_window_ms: int | None = Field(default=None, gt=0)
    """Length of the sliding rate-limit window (60000 for the seeds' per-minute limits)."""
    request_rate_limit: int | None = Field(default=None, ge=0)
    """Requests allowed per window, burst allowance included."""
    requests_remaining: int | None = Field(default=None, ge=0)
    token_rate_limit: int | None = Field(default=None, ge=0)
    """Tokens allowed per window, burst allowance included."""
    tokens_remaining: int | None = Field(default=None, ge=0)
    rate_limit_reset_at: EventTime | None = None
    """When the oldest counted request leaves the window (capacity frees up)."""
    policy_version: PolicyVersion
    updated_at: EventTime


class SloState(WireModel):
    """Error budget and burn rates of one burn-rate SLO (for one label set) over its period."""

    kind: Literal["burn_rate"] = "burn_rate"
    slo_id: Identifier
    key: Identifier | None = None
    """The tracker key ("slo:<id>" plus "/<label values>"); the Kafka key."""
    labels: Attributes = Field(default_factory=dict)
    """The label set the SLO is evaluated for (vendor, tool, ...)."""
    target: float = Field(gt=0.0, lt=1.0)
    """Objective as a fraction, e.g. 0.995."""
    period: Duration | None = None
    """Rolling period, ISO 8601 duration on the wire (e.g. "P30D"); None for a calendar one."""
    period_start: EventTime | None = None
    period_end: EventTime | None = None
    """A calendar period's bounds (absent for a rolling period)."""
    good: int = Field(ge=0)
    total: int = Field(ge=0)
    """Valid events (or slices, when budgeting by timeslices) in the period."""
    error_budget_remaining: float
    """Fraction of the error budget left over the period; negative once exhausted."""
    burn_rates: dict[ShortStr, float] = Field(default_factory=dict, max_length=MAX_LIST_ITEMS)
    """Burn rate per window name (e.g. "5m", "1h", "6h"); 1.0 spends the budget exactly."""
    firing: list[ShortStr] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    """Names of the burn-rate tiers whose condition holds now (e.g. "page-1h")."""
    alerting: dict[ShortStr, ShortStr] = Field(default_factory=dict, max_length=MAX_LIST_ITEMS)
    """The open alert per severity ("page" / "ticket") and the tier it fired for."""
    time_to_exhaustion_ms: int | None = Field(default=None, ge=0)
    """At the current bad-event rate, how long until the error budget is gone."""
    sla_tier: ShortStr | None = None
    """standard | premium | enterprise when an SLA contract applies."""
    policy_version: PolicyVersion
    updated_at: EventTime


class ObjectiveLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


class ObjectiveState(WireModel):
    """A window objective (the seeds' SLOs: a metric over a measurement window against an
    alert and a critical threshold) for one label set; topic slo-state."""

    kind: Literal["objective"] = "objective"
    slo_id: Identifier
    key: Identifier
    labels: Attributes = Field(default_factory=dict)
    metric: ShortStr
    window_ms: int = Field(gt=0)
    value: float | None = None
    """The metric over the window; None before there is a verdict."""
    level: ObjectiveLevel
    target: float
    warning_at: float
    critical_at: float
    events_in_window: int = Field(ge=0)
    policy_version: PolicyVersion
    updated_at: EventTime


class SlaState(WireModel):
    """An SLA contract's figures for the current period so far (a running projection of the
    report written at period close); topic slo-state."""

    kind: Literal["sla"] = "sla"
    slo_id: Identifier
    """The contract id (e.g. sla.premium)."""
    key: Identifier
    labels: Attributes = Field(default_factory=dict)
    tier: ShortStr
    period_start: EventTime
    period_end: EventTime
    total: int = Field(ge=0)
    good: int = Field(ge=0)
    availability_percent: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    credit_percent: float = Field(ge=0.0)
    """Service credit owed if the period ended now."""
    policy_version: PolicyVersion
    updated_at: EventTime


class SloStateRecord(RootModel[SloState | ObjectiveState | SlaState]):
    """A record of topic slo-state, whichever kind (told apart by its `kind` field)."""

    root: Annotated[SloState | ObjectiveState | SlaState, Field(discriminator="kind")]


class Availability(StrEnum):
    """Whether a dependency node can be used (the cascade's verdict on it)."""

    AVAILABLE = "available"
    DEGRADED = "degraded"
    """An optional dependency, somewhere down the chain, is down: usable, with less."""
    UNAVAILABLE = "unavailable"
    """A required dependency, somewhere down the chain, is down."""


class DependencyState(WireModel):
    """One node of the dependency graph, published when the cascade changes its availability;
    topic dependency-state, keyed by `subject` (what a gateway asks about: a graph has at most
    one node per subject)."""

    node: Identifier
    subject: ShortStr
    """What the node guards: `tool:t001`, `vendor:openai`, `module:planner`, `external:...`;
    the Kafka key."""
    availability: Availability
    previous: Availability
    cause: list[Identifier] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    """The node, the dependencies leading to the one that is down, and that one (empty when
    available)."""
    reason: Text
    criticality: ShortStr | None = None
    trigger: ShortStr
    """The health fact that changed it: `tool:t001 down`, or `resync` after a restart."""
    breaker_key: Identifier | None = None
    """The breaker whose transition made the fact (None for a resync)."""
    policy_version: PolicyVersion
    """The dependency policy's version."""
    updated_at: EventTime
    """Event time of the breaker transition that caused it (the resync's newest one)."""
