"""Decisions: what the kernels' shells conclude, in one shape for every kernel.

The agents turn decisions into records (state topics, alerts, audit); `guardstream replay`
prints them. `Decision.to_json()` is a stable line format other tools read (issue 3): every
line has `type`, `kernel`, `key`, `ts` (event time, RFC 3339 UTC, milliseconds) and
`event_id` (the input event or clock tick that caused it), plus the fields of its type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.control import ControlCommand
from schemas.types import Severity, rfc3339_ms


class DecisionType(StrEnum):
    TRANSITION = "transition"
    ALERT = "alert"
    CONTROL = "control"
    RECORD = "record"
    """Something only the audit trail needs (a period's final total, a late event)."""


class Kernel(StrEnum):
    """The built-in kernels' names (a `Decision.kernel` is any kernel's name: a new kernel
    names itself, `workers.shell.spec.KernelSpec.kernel`)."""

    BREAKER = "breaker"
    BUDGET = "budget"
    SLO = "slo"


class Stamp(TypedDict):
    """The fields every decision starts with (`Decision`'s), as one value: an engine spreads
    it into the decision it makes, `TransitionDecision(**stamp(...), from_state=...)`."""

    kernel: str
    key: str
    ts_ms: int
    event_id: str
    policy_version: str


def stamp(kernel: str, key: str, ts_ms: int, event_id: str, policy_version: str) -> Stamp:
    """`kernel`'s decision about `key` at `ts_ms`, caused by `event_id`, under the policy
    `policy_version`."""
    return Stamp(
        kernel=kernel, key=key, ts_ms=ts_ms, event_id=event_id, policy_version=policy_version
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """Common head of every decision."""

    kernel: str
    """The deciding kernel's name (`Kernel` for the built-in ones)."""
    key: str
    ts_ms: int
    event_id: str
    policy_version: str

    @property
    def type(self) -> DecisionType:
        raise NotImplementedError

    def head(self) -> dict[str, Any]:
        return {
            "type": str(self.type),
            "kernel": str(self.kernel),
            "key": self.key,
            "ts": rfc3339_ms(self.ts_ms),
            "event_id": self.event_id,
        }

    def to_json(self) -> dict[str, Any]:
        return self.head()


@dataclass(frozen=True, slots=True)
class TransitionDecision(Decision):
    """A state machine moved: `from_state` -> `to_state` (lower-case state names)."""

    from_state: str
    to_state: str
    reason: str
    policy_id: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    """Kernel-specific extras (a breaker's attempt, retry_at, fallback_action)."""
    record: BaseModel | None = None
    """The state-topic record of the state entered (not part of the line format)."""

    @property
    def type(self) -> DecisionType:
        return DecisionType.TRANSITION

    def to_json(self) -> dict[str, Any]:
        return {
            **self.head(),
            "from": self.from_state,
            "to": self.to_state,
            "reason": self.reason,
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            **self.details,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class AlertDecision(Decision):
    """An alert fired or resolved; `alert` is the record published on `alerts`."""

    alert: Alert

    @property
    def type(self) -> DecisionType:
        return DecisionType.ALERT

    def to_json(self) -> dict[str, Any]:
        alert = self.alert
        return {
            **self.head(),
            "status": str(alert.status),
            "severity": str(alert.severity),
            "fingerprint": alert.fingerprint,
            "alert_kind": alert.kind,
            "labels": dict(alert.labels),
            "summary": alert.summary,
            "value": alert.value,
            "threshold": alert.threshold,
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True, slots=True)
class ControlDecision(Decision):
    """A command for the runtimes in a scope (`command` is published on `control`)."""

    command: ControlCommand

    @property
    def type(self) -> DecisionType:
        return DecisionType.CONTROL

    def to_json(self) -> dict[str, Any]:
        command = self.command
        return {
            **self.head(),
            "command": str(command.kind),
            "target": command.target,
            "parameters": dict(command.parameters),
            "reason": command.reason,
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True, slots=True)
class RecordDecision(Decision):
    """An audit-only decision: `what` happened (e.g. period_closed, late_spend) and its facts."""

    what: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> DecisionType:
        return DecisionType.RECORD

    def to_json(self) -> dict[str, Any]:
        return {
            **self.head(),
            "record": self.what,
            **self.facts,
            "policy_version": self.policy_version,
        }


def audit_severity(decision: Decision) -> Severity:
    """A decision's audit severity unless its kernel says otherwise: an alert's own, WARNING
    for a control command, INFO for the rest."""
    if isinstance(decision, AlertDecision):
        return decision.alert.severity
    return Severity.WARNING if isinstance(decision, ControlDecision) else Severity.INFO
