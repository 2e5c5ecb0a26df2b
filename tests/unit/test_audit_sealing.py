"""Sealing with masking: classified values never reach a sealed record; a notice follows."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.audit import AuditSource
from schemas.types import Severity
from tests.support.alerts import firing_alert
from workers.audit.chain import AuditChain, record_hash_ok
from workers.audit.sealing import SENSITIVE, masked_alert, seal_masked
from workers.masking.masker import default_masker

TS = 1_795_000_000_000
VERSION = "a" * 64
SSN, EMAIL = "123-45-6789", "Jane.Doe@Example.com"


def test_a_payload_with_classified_values_is_masked_and_followed_by_a_notice() -> None:
    chain = AuditChain("input-p0")
    payload = {
        "event": {"user": EMAIL, "attributes": {"note": f"ssn {SSN}", "n": "42"}},
        # the seed's aud.tool.invocation required fields (else an aud.audit.violation follows)
        "tool_id": "openai/chat",
        "vendor": "openai",
        "cost": "0.0021",
        "duration_ms": 12,
        "status": "success",
        "tokens_used": 7,
    }
    source = AuditSource(topic="t", partition=0, offset=7, event_id=f"call-{SSN}")
    records = seal_masked(
        chain,
        default_masker(),
        "aud.tool.invocation",
        ts_ms=TS,
        severity=Severity.INFO,
        policy_version=VERSION,
        payload=payload,
        source=source,
        user=EMAIL,
    )
    record, notice = records
    encoded = b"".join(orjson.dumps(r.model_dump(mode="json")) for r in records)
    assert SSN.encode() not in encoded
    assert EMAIL.encode() not in encoded
    assert EMAIL.lower().encode() not in encoded
    event: Any = record.payload["event"]
    assert event["attributes"]["n"] == "42"  # clean values untouched
    assert notice.event_type == SENSITIVE
    assert notice.severity is Severity.CRITICAL
    assert notice.payload["record_id"] == record.record_id
    assert {"classification", "handling_method", "jurisdiction", "user"} <= notice.payload.keys()
    findings: Any = notice.payload["findings"]
    paths = {f["path"] for f in findings}
    assert {"payload.event.user", "payload.event.attributes.note", "source.event_id"} <= paths
    assert (record.seq, notice.seq, notice.prev_hash) == (0, 1, record.hash)
    assert record_hash_ok(record)
    assert record_hash_ok(notice)


def test_a_clean_payload_is_one_record() -> None:
    chain = AuditChain("breakers-p0")
    records = seal_masked(
        chain,
        default_masker(),
        "aud.breaker.transition",
        ts_ms=TS,
        severity=Severity.INFO,
        policy_version=VERSION,
        payload={
            "key": "openai/chat",
            "from": "closed",
            "to": "open",
            "reason": "failure rate",
            "policy_id": "cb.vendor.default",
        },
    )
    assert [r.event_type for r in records] == ["aud.breaker.transition"]


def test_alert_labels_and_summary_are_masked() -> None:
    alert = firing_alert(
        "budget_threshold",
        Severity.WARNING,
        {"budget_key": f"bud.user/{EMAIL}"},
        f"budget of {EMAIL} at 80 %",
        ts_ms=TS,
        policy_version=VERSION,
    )
    masked = masked_alert(default_masker(), alert)
    assert EMAIL not in orjson.dumps(masked.model_dump(mode="json")).decode()
    assert masked.fingerprint == alert.fingerprint
