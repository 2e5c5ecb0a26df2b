"""Budgets as a kernel of the shell (`workers.shell.spec`): a routed kernel (DESIGN §11: route
where the events are, count where the budget is).

Each input batch's tool invocations and cost events are routed to the budgets they match
(`routing.route`), summed per key and second and sent to `budget-spend` keyed by budget key;
one `BudgetCounting` per `budget-spend` partition counts them in event-time order under the
low watermark of the input partitions. Every decision is audited (`aud.budget.*`, with the
seeds' required fields for `aud.budget.exceeded`: budget_id, limit, actual, action_taken);
`budget-state` gets a record for every ledger a batch touched.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prometheus_client.registry import Collector
from pydantic import BaseModel

from schemas import audit_names as names
from schemas.state import BudgetState
from schemas.types import Severity
from topics.catalog import TopicName
from workers.budgets.counting import BudgetCounting
from workers.budgets.records import route_batch
from workers.cardinality import is_cardinality_alert
from workers.decisions import (
    AlertDecision,
    ControlDecision,
    Decision,
    Kernel,
    RecordDecision,
    TransitionDecision,
    audit_severity,
)
from workers.kernels.budget import BudgetLedger
from workers.kernels.key_cap import StateKind
from workers.kernels.rolling_sum import from_nanos
from workers.metrics import BudgetCollector
from workers.shell.spec import AuditEntry, KernelSpec, KernelStats

INPUTS = (TopicName.TOOL_INVOCATIONS, TopicName.COST_EVENTS)


def audit_entry(core: BudgetCounting, decision: Decision) -> AuditEntry:
    ledger = core.engine.ledgers.get(decision.key)
    return AuditEntry(
        _audit_type(decision),
        _audit_severity(decision),
        {**decision.to_json(), **_required_fields(ledger, decision)},
    )


def _audit_type(decision: Decision) -> str:
    if is_cardinality_alert(decision):
        return names.CARDINALITY_LIMIT
    if isinstance(decision, RecordDecision):
        return names.BUDGET_RECORD_PREFIX + decision.what
    if isinstance(decision, ControlDecision):
        return names.BUDGET_CONTROL
    if isinstance(decision, TransitionDecision):
        return names.BUDGET_EXCEEDED if decision.to_state != "allow" else names.BUDGET_RECOVERED
    if isinstance(decision, AlertDecision) and decision.alert.status.value == "firing":
        return names.BUDGET_EXCEEDED
    return names.BUDGET_ALERT


def _audit_severity(decision: Decision) -> Severity:
    if isinstance(decision, TransitionDecision) and decision.to_state == "halt":
        return Severity.CRITICAL
    return audit_severity(decision)


def _required_fields(ledger: BudgetLedger | None, decision: Decision) -> dict[str, Any]:
    """The seeds' aud.budget.exceeded fields: budget_id, limit, actual, action_taken — as of
    the decision (a threshold alert's and a transition's own figures), not of the ledger when
    the record is published, which depends on how much a watermark released at once."""
    if ledger is None:
        return {}
    config = ledger.config
    counted = ledger.period is not None and ledger.watermark_ms is not None
    actual = str(from_nanos(ledger.spent_nanos)) if counted else None
    action = ledger.action.value
    if isinstance(decision, AlertDecision) and "spent_usd" in decision.alert.labels:
        actual = decision.alert.labels["spent_usd"]
        action = decision.alert.labels.get("action_taken", action)
    elif isinstance(decision, TransitionDecision):
        actual = decision.evidence.get("spent_usd", actual)
        action = decision.to_state
    return {
        "budget_id": config.budget_id,
        "limit": str(config.limit_usd) if config.limit_usd is not None else config.limit_tokens,
        "actual": actual,
        "action_taken": action,
    }


def _state_order(state: BaseModel) -> tuple[str, list[tuple[str, str]]]:
    assert isinstance(state, BudgetState)
    return state.budget_id, sorted(state.scope.items())


def _collector(stats: KernelStats) -> Collector:
    cores: Any = stats.cores
    return BudgetCollector(
        stats.routed, stats.decisions, lambda: (g for core in cores() for g in core.gauges())
    )


BUDGETS: KernelSpec[BudgetCounting] = KernelSpec(
    kernel=Kernel.BUDGET,
    state_kind=StateKind.BUDGETS,
    inputs=INPUTS,
    state_topic=TopicName.BUDGET_STATE,
    page="/budgets",
    enabled=lambda policies: bool(policies.budgets.budgets),
    audit=audit_entry,
    state_order=_state_order,
    collector=_collector,
    routed_topic=TopicName.BUDGET_SPEND,
    router=lambda policies: partial(route_batch, policies.budgets),
    routed=lambda policies, sources, limit: BudgetCounting(policies.budgets, sources, limit),
)
