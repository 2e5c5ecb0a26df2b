"""What the budget kernel decides: small immutable records the shell turns into state, alerts,
audit records and control commands. Amounts are exact integers (nano-dollars, tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.state import BudgetAction
from workers.kernels.budget_config import ThresholdAction
from workers.kernels.budget_tripwire import TripwireRecovered, TripwireTripped
from workers.kernels.spend_anomaly import (
    AnomalyEnded,
    AnomalyStarted,
    RapidConsumptionEnded,
    RapidConsumptionStarted,
)


@dataclass(frozen=True, slots=True)
class ThresholdCrossed:
    """Utilisation reached `percent` of a limit in the period `period_label` (once per
    threshold and period; a late event can make it happen in the period before)."""

    at_ms: int
    period_label: str
    percent: Decimal
    action: ThresholdAction
    spent_nanos: int
    tokens: int


@dataclass(frozen=True, slots=True)
class ActionChanged:
    """What a gateway must do for calls in the budget's scope changed."""

    at_ms: int
    from_action: BudgetAction
    to_action: BudgetAction
    decided_by: str | None
    """e.g. "threshold:95", "hard_limit", "rate_limit:requests", "rapid_consumption"."""


@dataclass(frozen=True, slots=True)
class PeriodRolled:
    """Event time entered a new period: the old period's threshold alerts resolve."""

    at_ms: int
    old_label: str
    new_label: str
    crossed: tuple[Decimal, ...]
    """Thresholds crossed in the old period (their alerts resolve now)."""


@dataclass(frozen=True, slots=True)
class PeriodClosed:
    """The grace period ended: the period's total is final (audited)."""

    at_ms: int
    period_label: str
    start_ms: int
    end_ms: int
    spent_nanos: int
    tokens: int
    requests: int


@dataclass(frozen=True, slots=True)
class LateSpend:
    """Spend for a period already closed (or older than a rolling window): not counted,
    audited."""

    at_ms: int
    event_ts_ms: int
    nanos: int
    tokens: int


@dataclass(frozen=True, slots=True)
class ApprovalExceeded:
    """One event cost more than the policy's approval limit (the call already happened)."""

    at_ms: int
    nanos: int
    limit_nanos: int


BudgetOutput = (
    ThresholdCrossed
    | ActionChanged
    | PeriodRolled
    | PeriodClosed
    | LateSpend
    | ApprovalExceeded
    | AnomalyStarted
    | AnomalyEnded
    | RapidConsumptionStarted
    | RapidConsumptionEnded
    | TripwireTripped
    | TripwireRecovered
)
