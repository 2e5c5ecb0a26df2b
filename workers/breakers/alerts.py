"""The breaker-open alert: fires once when a breaker opens, resolves once when it recovers.

Flapping between OPEN and HALF_OPEN is one incident (one firing alert); a forced-open breaker
is an operator's decision, audited but not alerted.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.state import CircuitState
from schemas.types import from_epoch_ms
from workers.kernels.breaker import BreakerConfig, Transition

ALERT_KIND = "breaker_open"

# States in which the incident is over: the breaker lets calls through again (or an operator
# took it out of service), so a firing alert resolves.
RECOVERED = frozenset({CircuitState.CLOSED, CircuitState.DISABLED, CircuitState.METRICS_ONLY})


@dataclass(frozen=True, slots=True)
class BreakerIdentity:
    """What names a breaker in alert labels."""

    key: str
    vendor: str
    tool: str

    def labels(self) -> dict[str, str]:
        return {"breaker": self.key, "vendor": self.vendor, "tool": self.tool}


def alert_change(
    firing: Alert | None,
    transition: Transition,
    config: BreakerConfig,
    identity: BreakerIdentity,
    *,
    event_id: str,
    policy_version: str,
) -> Alert | None:
    """The alert this transition fires or resolves, or None. `firing` is the breaker's alert
    still firing, if any."""
    to = transition.to_state
    if to is CircuitState.OPEN and firing is None and config.alert_on_open:
        return _firing(transition, config, identity, event_id, policy_version)
    if to in RECOVERED and firing is not None:
        return firing.model_copy(
            update={
                "alert_id": f"{firing.fingerprint}-{transition.at_ms}-resolved",
                "status": AlertStatus.RESOLVED,
                "ends_at": from_epoch_ms(transition.at_ms),
                "summary": f"circuit breaker {identity.key} {to.value}: {transition.reason}",
                "evidence": [event_id],
                "policy_version": policy_version,
            }
        )
    return None


def _firing(
    transition: Transition,
    config: BreakerConfig,
    identity: BreakerIdentity,
    event_id: str,
    policy_version: str,
) -> Alert:
    evidence = transition.evidence
    return firing_alert(
        ALERT_KIND,
        identity.labels(),
        severity=config.alert_severity,
        summary=(
            f"circuit breaker {identity.key} opened: {transition.reason} "
            f"({evidence.failed_calls}/{evidence.calls} failed calls in the window)"
        ),
        at_ms=transition.at_ms,
        policy_version=policy_version,
        evidence=[event_id],
        value=max(evidence.failure_rate_pct, 0.0) / 100,
        threshold=config.failure_rate_threshold_pct / 100,
        extra={"policy_id": config.policy_id, "reason": transition.reason},
    )
