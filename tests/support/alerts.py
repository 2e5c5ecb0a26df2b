"""Alerts as tests need them: a firing alert whose id, fingerprint and times do not matter."""

from __future__ import annotations

from schemas.alerts import Alert, AlertStatus
from schemas.types import Severity, from_epoch_ms


def firing_alert(
    kind: str,
    severity: Severity,
    labels: dict[str, str],
    summary: str,
    *,
    ts_ms: int,
    policy_version: str,
    fingerprint: str = "0" * 32,
) -> Alert:
    """A firing alert of `kind` that started at `ts_ms`."""
    return Alert(
        alert_id="a-1",
        fingerprint=fingerprint,
        kind=kind,
        severity=severity,
        status=AlertStatus.FIRING,
        labels=labels,
        summary=summary,
        starts_at=from_epoch_ms(ts_ms),
        policy_version=policy_version,
    )
