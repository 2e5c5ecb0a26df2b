"""Alerts (topic `alerts`, keyed by fingerprint) — DESIGN §7."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Final, Self, TypedDict, Unpack

import orjson
from pydantic import Field, model_validator

from schemas.base import WireModel
from schemas.types import (
    Attributes,
    EventTime,
    Evidence,
    Identifier,
    PolicyVersion,
    Severity,
    Text,
    from_epoch_ms,
)

# 32 hex chars = 128 bits of SHA-256: collisions among the few thousand alert identities a fleet
# has are out of the question, and the key stays short in Kafka, Alertmanager and Redis.
FINGERPRINT_HEX_CHARS: Final = 32


CARDINALITY_LIMIT: Final = "cardinality_limit"
"""The kind of the alert a worker raises when a kind of keyed state (breakers, budget keys,
SLO trackers) reaches its configured cap: `labels.state` names the kind, `labels.scope` the
partition share; new keys go to an overflow state (workers.cardinality)."""


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def alert_fingerprint(kind: str, labels: Mapping[str, str]) -> str:
    """Stable identity of an alert: the same kind and identifying labels, the same fingerprint.

    SHA-256 over the canonical orjson encoding of ``{"kind": kind, "labels": labels}`` with
    sorted keys, so the order in which labels were built never matters; truncated to
    FINGERPRINT_HEX_CHARS lower-case hex characters. Pass only the *identifying* labels (not
    values that change while the alert fires), or firing/resolving would not pair up.
    """
    canonical = orjson.dumps({"kind": kind, "labels": dict(labels)}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:FINGERPRINT_HEX_CHARS]


class Alert(WireModel):
    """One alert state change: fires once on entering its condition, resolves once on leaving."""

    alert_id: Identifier
    """Unique per state change (a firing and its resolution have different ids)."""
    fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")
    """alert_fingerprint(kind, identifying labels); the Kafka key and the dedup identity."""
    kind: Identifier
    """What condition this is, e.g. breaker_open, budget_threshold, slo_burn_rate,
    cardinality_limit."""
    severity: Severity
    status: AlertStatus
    labels: Attributes = Field(default_factory=dict)
    """Identifying labels (vendor, tool, budget_id, slo_id, window...) plus context."""
    summary: Text
    """One line for humans; never contains unmasked classified data."""
    value: float | None = None
    """The observed value that crossed the threshold (rate, utilisation, burn rate)."""
    threshold: float | None = None
    starts_at: EventTime
    """Event time at which the condition was entered."""
    ends_at: EventTime | None = None
    """Event time at which it was left; set only when status is resolved."""
    policy_version: PolicyVersion
    """Version (content hash) of the policy that made the decision."""
    evidence: Evidence = Field(default_factory=list)
    """Ids of (some of) the source events that led to the decision."""

    @model_validator(mode="after")
    def _ends_only_when_resolved(self) -> Self:
        # A firing alert with an end, or a resolution without one, would break the
        # "fires once, resolves once" pairing downstream (Alertmanager uses endsAt to resolve).
        if self.status is AlertStatus.RESOLVED and self.ends_at is None:
            raise ValueError("ends_at: required when status is resolved")
        if self.status is AlertStatus.FIRING and self.ends_at is not None:
            raise ValueError("ends_at: must be empty while status is firing")
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at: earlier than starts_at")
        return self


class AlertFigures(TypedDict, total=False):
    """What a firing alert shows besides its identity and summary (`firing_alert`'s keywords,
    which the alert books pass on)."""

    value: float | None
    threshold: float | None
    extra: Mapping[str, str] | None
    """Labels shown, not identifying (not part of the fingerprint)."""


def firing_alert(
    kind: str,
    identity: Mapping[str, str],
    *,
    severity: Severity,
    summary: str,
    at_ms: int,
    policy_version: str,
    evidence: Sequence[str] = (),
    **figures: Unpack[AlertFigures],
) -> Alert:
    """The alert of `kind` entering its condition at `at_ms`, identified by `identity` (its
    fingerprint and its first labels)."""
    fingerprint = alert_fingerprint(kind, identity)
    return Alert(
        alert_id=f"{fingerprint}-{at_ms}-firing",
        fingerprint=fingerprint,
        kind=kind,
        severity=severity,
        status=AlertStatus.FIRING,
        labels={**identity, **(figures.get("extra") or {})},
        summary=summary,
        value=figures.get("value"),
        threshold=figures.get("threshold"),
        starts_at=from_epoch_ms(at_ms),
        policy_version=policy_version,
        evidence=list(evidence),
    )
