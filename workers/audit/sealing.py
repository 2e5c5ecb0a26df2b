"""Sealing with masking (DESIGN §8, §10): nothing unmasked reaches the audit topic.

Every string of a record's payload (and the event id of its source) goes through the
classification masker before the record is sealed; when something was found, an
`aud.data.sensitive` record follows in the same chain, saying what was found where (paths and
types, never values) with the seed's required fields classification, handling_method,
jurisdiction and user.

The audit event-type policy (`workers.policies.audit_event_types`) is applied to every record sealed
here: a configured type is sealed with its configured severity, and a record lacking one of
its type's required fields is still sealed as written (an audit trail must not lose a
decision) but followed by an `aud.audit.violation` record (critical) naming its record_id,
event type and missing fields. Order in the chain: the record, its `aud.data.sensitive`
notice, then the violations. Unknown event types pass unchecked. Pure: the caller publishes
the records.
"""

from __future__ import annotations

from typing import Unpack

from schemas import audit_names as names
from schemas.alerts import Alert
from schemas.audit import AuditRecord
from schemas.types import Severity
from workers.audit.chain import AuditChain, Sealing
from workers.masking.masker import Masker
from workers.policies.audit_event_types import VIOLATION, AuditPolicy, default_audit_policy

SENSITIVE = names.SENSITIVE_DATA


def seal_masked(
    chain: AuditChain,
    masker: Masker,
    event_type: str,
    *,
    user: str | None = None,
    policy: AuditPolicy | None = None,
    **fields: Unpack[Sealing],
) -> list[AuditRecord]:
    """The record, masked, and an `aud.data.sensitive` record after it when masking found
    something (`user`: whose data it was, when known; it is masked too), then an
    `aud.audit.violation` record for each of them that lacks required fields (`policy`: the
    audit event-type policy, default the built-in one)."""
    audit = policy or default_audit_policy()
    ts_ms, policy_version, source = fields["ts_ms"], fields["policy_version"], fields.get("source")
    masked = masker.mask(dict(fields["payload"]), "payload")
    findings = list(masked.findings)
    if source is not None and source.event_id is not None:
        event_id, found = masker.mask_text(source.event_id, "source.event_id")
        if found:
            source = source.model_copy(update={"event_id": event_id})
            findings += found
    record = chain.seal(
        event_type,
        ts_ms=ts_ms,
        severity=audit.severity_for(event_type, fields["severity"]),
        policy_version=policy_version,
        payload=masked.value,
        source=source,
    )
    records = [record]
    if findings:
        records.append(
            chain.seal(
                SENSITIVE,
                ts_ms=ts_ms,
                severity=audit.severity_for(SENSITIVE, Severity.CRITICAL),
                policy_version=policy_version,
                payload={
                    **masker.sensitive_payload(findings, user=user),
                    "record_id": record.record_id,
                },
                source=source,
            )
        )
    for sealed in list(records):
        missing = audit.missing_fields(sealed.event_type, sealed.payload)
        if missing:
            records.append(_violation(chain, audit, sealed, missing, ts_ms))
    return records


def _violation(
    chain: AuditChain,
    audit: AuditPolicy,
    record: AuditRecord,
    missing: tuple[str, ...],
    ts_ms: int,
) -> AuditRecord:
    """The `aud.audit.violation` record after `record`, stamped with the audit policy's
    version (it is that policy's decision)."""
    return chain.seal(
        VIOLATION,
        ts_ms=ts_ms,
        severity=audit.severity_for(VIOLATION, Severity.CRITICAL),
        policy_version=audit.version,
        payload={
            "record_id": record.record_id,
            "event_type": record.event_type,
            "missing": list(missing),
        },
        source=record.source,
    )


def masked_alert(masker: Masker, alert: Alert) -> Alert:
    """`alert` with its labels and summary masked (the same alert when nothing matched)."""
    masked = masker.mask({"labels": dict(alert.labels), "summary": alert.summary})
    if not masked.findings:
        return alert
    return alert.model_copy(
        update={"labels": masked.value["labels"], "summary": masked.value["summary"]}
    )
