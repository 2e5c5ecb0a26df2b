"""Escalation of unacknowledged alerts (pure: no I/O, no clock, no randomness).

The seeds escalate an alert that stays unhandled: a circuit that is open for 5 minutes goes
to operations and engineering (`resontinex/circuit_breakers.yaml`, `alerting.circuit_open`),
an SLO warning that lasts 5 minutes and a critical one that lasts 2 are raised
(`resontinex/slo.yaml`, `monitoring_config.escalation_policy`), an SLA tier escalates after its
`escalation_time_minutes` (`alpha-solver/sla_contracts.yaml`).

`EscalationBook` takes, in one order, the alert records (`observe`), acknowledgements
(`acknowledge`) and the passing of event time (`advance`, from clock ticks). An incident that
a rule matches, still firing and not acknowledged `after_ms` after it started, escalates once:
an `alert_escalated` alert (severity raised, the rule's `notify` channels, the incident's
labels), resolved when the incident resolves or is acknowledged. Time is only what the inputs
say, so a replay of the same inputs escalates the same incidents at the same instants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.types import Severity, epoch_ms, from_epoch_ms

ESCALATED = "alert_escalated"
MAX_WATCHED = 100_000
"""Incidents watched at most (the oldest is dropped first; the worker's key caps keep the
real number far below)."""


@dataclass(frozen=True, slots=True)
class EscalationRule:
    """Incidents of `kinds` (every kind when empty) at one of `severities` (any when empty)
    whose labels hold `labels`, unacknowledged for `after_ms`, escalate to `escalate_to`."""

    name: str
    after_ms: int
    escalate_to: Severity
    notify: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    severities: frozenset[Severity] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.after_ms <= 0:
            raise ValueError(f"escalation rule {self.name}: after_ms must be positive")

    def matches(self, alert: Alert) -> bool:
        return (
            alert.kind != ESCALATED
            and (not self.kinds or alert.kind in self.kinds)
            and (not self.severities or alert.severity in self.severities)
            and all(alert.labels.get(k) == v for k, v in self.labels.items())
        )


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Someone took an incident on: it no longer escalates, and an escalation of it resolves."""

    fingerprint: str
    at_ms: int
    actor: str
    reason: str = ""


@dataclass(slots=True)
class _Watched:
    incident: Alert
    rule: EscalationRule
    due_ms: int
    escalation: Alert | None = None


class EscalationBook:
    def __init__(
        self, rules: Sequence[EscalationRule], policy_version: str, max_watched: int = MAX_WATCHED
    ) -> None:
        self.rules = tuple(rules)
        self.policy_version = policy_version
        self.max_watched = max_watched
        self._watched: dict[str, _Watched] = {}
        self._now_ms: int | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def observe(self, alert: Alert) -> list[Alert]:
        """An alert record, in order. Its instant is event time reached (what was due by then
        escalates first); then a firing starts watching its incident (the first rule that
        matches decides), a resolution stops it and resolves its escalation."""
        if alert.status is AlertStatus.RESOLVED:
            at_ms = epoch_ms(alert.ends_at or alert.starts_at)
            out = self.advance(at_ms)
            watched = self._watched.pop(alert.fingerprint, None)
            return out + self._close(watched, at_ms, f"{alert.kind} resolved")
        started_ms = epoch_ms(alert.starts_at)
        out = self.advance(started_ms)
        rule = next((r for r in self.rules if r.matches(alert)), None)
        if rule is None or alert.fingerprint in self._watched:
            return out
        self._watched[alert.fingerprint] = _Watched(alert, rule, started_ms + rule.after_ms)
        while len(self._watched) > self.max_watched:
            del self._watched[next(iter(self._watched))]
        # A late record (event time is past its due time already) escalates at once.
        return out + self.advance(self._now_ms if self._now_ms is not None else started_ms)

    def acknowledge(self, ack: Acknowledgement) -> list[Alert]:
        """An acknowledgement, in order: what was due before it escalates first; then its
        incident stops being watched and an escalation of it resolves. Acknowledging an
        incident that is not watched changes nothing."""
        out = self.advance(ack.at_ms)
        watched = self._watched.pop(ack.fingerprint, None)
        return out + self._close(watched, ack.at_ms, f"acknowledged by {ack.actor}")

    def advance(self, now_ms: int) -> list[Alert]:
        """Event time reached `now_ms`: every watched incident due by then escalates, in the
        order of their due times (then fingerprints)."""
        if self._now_ms is None or now_ms > self._now_ms:
            self._now_ms = now_ms
        due = sorted(
            (w for w in self._watched.values() if w.escalation is None and w.due_ms <= now_ms),
            key=lambda w: (w.due_ms, w.incident.fingerprint),
        )
        escalated = []
        for watched in due:
            watched.escalation = self._escalation(watched)
            escalated.append(watched.escalation)
        return escalated

    def _escalation(self, watched: _Watched) -> Alert:
        incident, rule = watched.incident, watched.rule
        minutes = rule.after_ms / 60_000
        context = {k: v for k, v in incident.labels.items() if k != "severity"}
        return firing_alert(
            ESCALATED,
            {"incident": incident.fingerprint, "rule": rule.name},
            severity=rule.escalate_to,
            summary=f"{incident.kind} not acknowledged for {minutes:g} min: {incident.summary}",
            at_ms=watched.due_ms,
            policy_version=self.policy_version,
            evidence=[incident.alert_id],
            extra={
                **context,
                "escalated_kind": incident.kind,
                "escalated_severity": incident.severity.value,
                "notify": ",".join(rule.notify),
            },
        )

    def _close(self, watched: _Watched | None, at_ms: int, why: str) -> list[Alert]:
        if watched is None or watched.escalation is None:
            return []
        escalation = watched.escalation
        ends = max(from_epoch_ms(at_ms), escalation.starts_at)
        return [
            escalation.model_copy(
                update={
                    "alert_id": f"{escalation.fingerprint}-{at_ms}-resolved",
                    "status": AlertStatus.RESOLVED,
                    "ends_at": ends,
                    "summary": f"escalation ended: {why}",
                }
            )
        ]
