"""The alert lifecycle the engines share (DESIGN §7): fire once on entering a condition,
resolve once on leaving it, never a duplicate in between.

An alert's slot is (state key, alert kind, a label telling two alerts of one kind on one key
apart). `fire` on a slot already firing and `resolve` on one that is not are no-ops, so a
kernel may report its condition as often as it likes. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

from schemas.alerts import Alert, AlertFigures, AlertStatus, firing_alert
from schemas.types import Severity, from_epoch_ms
from workers.decisions import AlertDecision, stamp

Slot = tuple[str, str, str]  # (state key, alert kind, distinguishing label)


class AlertBook:
    def __init__(self, kernel: str, policy_version: str) -> None:
        self.kernel = kernel
        self.policy_version = policy_version
        self._firing: dict[Slot, Alert] = {}

    def is_firing(self, slot: Slot) -> bool:
        return slot in self._firing

    def firing_in(self, key: str) -> list[Alert]:
        return [alert for (k, _, _), alert in self._firing.items() if k == key]

    def fire(
        self,
        slot: Slot,
        identity: Mapping[str, str],
        severity: Severity,
        summary: str,
        at_ms: int,
        event_id: str,
        **figures: Unpack[AlertFigures],
    ) -> list[AlertDecision]:
        """Fire `slot`'s alert (identified by kind + `identity`), unless it is firing
        already."""
        if slot in self._firing:
            return []
        alert = firing_alert(
            slot[1],
            identity,
            severity=severity,
            summary=summary,
            at_ms=at_ms,
            policy_version=self.policy_version,
            evidence=[event_id],
            **figures,
        )
        self._firing[slot] = alert
        return [self._decision(slot[0], alert, at_ms, event_id)]

    def resolve(
        self,
        slot: Slot,
        at_ms: int,
        event_id: str,
        *,
        summary: str | None = None,
        value: float | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> list[AlertDecision]:
        """Resolve `slot`'s alert if it is firing: same fingerprint, `value` and labels
        updated by `extra` (the figures at resolution, not the firing ones)."""
        firing = self._firing.pop(slot, None)
        if firing is None:
            return []
        update: dict[str, object] = {
            "alert_id": f"{firing.fingerprint}-{at_ms}-resolved",
            "status": AlertStatus.RESOLVED,
            "ends_at": max(from_epoch_ms(at_ms), firing.starts_at),
            "evidence": [event_id],
        }
        if summary is not None:
            update["summary"] = summary
        if value is not None:
            update["value"] = value
        if extra:
            update["labels"] = {**firing.labels, **extra}
        resolved = firing.model_copy(update=update)
        return [self._decision(slot[0], resolved, at_ms, event_id)]

    def _decision(self, key: str, alert: Alert, at_ms: int, event_id: str) -> AlertDecision:
        return AlertDecision(
            **stamp(self.kernel, key, at_ms, event_id, self.policy_version), alert=alert
        )
