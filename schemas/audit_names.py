"""Every audit event type guardstream writes, named once: the `event_type` of its audit
records (`workers.policies.audit_event_types` holds their severities, required fields and
retention)."""

from __future__ import annotations

# Input events (workers.audit.inputs), one type per input model.
TOOL_INVOCATION = "aud.tool.invocation"
COST_EVENT = "aud.cost.event"
LATENCY_EVENT = "aud.latency.event"
CLOCK_TICK = "aud.clock.tick"
BREAKER_OVERRIDE = "aud.breaker.override"
OTHER_INPUT = "aud.input.event"
DEAD_LETTERED = "aud.input.dead_lettered"
UNSEALABLE = "aud.input.unsealable"
SENSITIVE_DATA = "aud.data.sensitive"
RISK_TRIGGERED = "aud.risk.triggered"
"""A tool invocation that broke a data-class rule (`workers.audit.data_risk`)."""

# Decisions.
BREAKER_TRANSITION = "aud.breaker.transition"
BUDGET_EXCEEDED = "aud.budget.exceeded"
BUDGET_RECOVERED = "aud.budget.recovered"
BUDGET_ALERT = "aud.budget.alert"
BUDGET_CONTROL = "aud.budget.control"
BUDGET_RECORD_PREFIX = "aud.budget."
"""+ a budget record's `what` (period_closed, late_spend)."""
SLO_ALERT = "aud.slo.alert"
SLO_CONTROL = "aud.slo.control"
SLO_RECORD_PREFIX = "aud.slo."
"""+ an SLO record's `what` (sla_report, slo_period_closed, late_events)."""
CARDINALITY_LIMIT = "aud.state.cardinality_limit"
DEPENDENCY_CHANGED = "aud.dependency.changed"
"""A dependency node's availability changed (`workers.cascade`)."""

# The trail itself.
POLICY_CHANGED = "aud.policy.changed"
AUDIT_VIOLATION = "aud.audit.violation"

INPUT_POLICY_VERSION = "0" * 64
"""The `policy_version` of input records and of ingest's own alerts: facts, not decisions of
a policy (all zeros)."""
