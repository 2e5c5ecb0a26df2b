"""Calls that broke a data-class rule become `aud.risk.triggered` audit entries, at every
audit level, with the seed's required fields and no value of the event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.calls import audited_call, ingest_values
from workers.audit.data_risk import DataRiskRules, declared_classes, risk_payload
from workers.audit.inputs import RISK_TRIGGERED, input_entries
from workers.masking.masker import Masker
from workers.policies.policy_set import PolicySet, default_policies, load_policies
from workers.settings import AuditLevel, Mode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000
SSN = "123-45-6789"


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(EXAMPLES / "vendors.yaml", Mode.DEVELOPMENT)


@pytest.fixture(scope="module")
def rules(policies: PolicySet) -> DataRiskRules:
    found = DataRiskRules.from_policies(policies, Masker(policies.classification))
    assert found is not None
    return found


def call(event_id: str, vendor: str, **attributes: str) -> bytes:
    return audited_call(event_id, TS_MS, vendor=vendor, attributes=attributes)


def payload_of(rules: DataRiskRules, vendor: str, **attributes: str) -> dict[str, Any] | None:
    result = ingest_values(
        TOPIC, 0, [call("c1", vendor, **attributes)], first_offset=0, ts_ms=TS_MS
    )
    (item,) = result.accepted
    return risk_payload(rules, item.event, item.document)


def test_without_a_vendor_registry_nothing_is_judged() -> None:
    policies = default_policies(Mode.DEVELOPMENT)
    assert DataRiskRules.from_policies(policies, Masker(policies.classification)) is None


def test_declared_phi_to_a_vendor_outside_hipaa_compliant_is_a_risk(rules: DataRiskRules) -> None:
    payload = payload_of(rules, "openai", data_classes="phi")
    assert payload is not None
    assert payload["risk_id"] == "data_class.vendor_not_allowed"
    assert payload["score"] == 1.0
    assert (payload["mitigation_action"], payload["escalation_path"]) == ("deny", "security")
    assert payload["declared_classes"] == ["phi"]
    assert [b["data_class"] for b in payload["breaches"]] == ["class.phi"]
    assert "hipaa_compliant" in payload["breaches"][0]["reason"]


def test_the_same_call_to_an_allowed_vendor_is_none(rules: DataRiskRules) -> None:
    assert payload_of(rules, "azure-openai", data_classes="class.phi, pii") is None
    assert payload_of(rules, "openai", data_classes="public") is None
    assert payload_of(rules, "openai") is None  # nothing declared, nothing found


def test_the_events_own_data_classification_is_declared_too(rules: DataRiskRules) -> None:
    value = audited_call("c1", TS_MS, vendor="openai", data_classification="pii")
    (item,) = ingest_values(TOPIC, 0, [value], first_offset=0, ts_ms=TS_MS).accepted
    payload = risk_payload(rules, item.event, item.document)
    assert payload is not None
    assert payload["declared_classes"] == ["pii"]


def test_detected_classes_count_and_their_values_never_appear(rules: DataRiskRules) -> None:
    payload = payload_of(rules, "openai", note=f"customer {SSN}")
    assert payload is not None
    assert payload["detected_classes"] == ["class.pii"]
    assert payload["declared_classes"] == []
    assert SSN.encode() not in orjson.dumps(payload)


def test_an_unknown_declared_class_is_a_risk_not_a_pass(rules: DataRiskRules) -> None:
    payload = payload_of(rules, "azure-openai", data_classes="class.secret")
    assert payload is not None
    assert payload["risk_id"] == "data_class.unknown_class"


def test_declared_classes_are_split_trimmed_deduplicated_and_capped(rules: DataRiskRules) -> None:
    many = ",".join(f"c{n}" for n in range(40))
    result = ingest_values(
        TOPIC,
        0,
        [call("c1", "openai", data_classes=f" phi ,phi,,pii,{many}")],
        first_offset=0,
        ts_ms=TS_MS,
    )
    declared = declared_classes(result.accepted[0].event)
    assert declared[:3] == ("phi", "pii", "c0")
    assert len(declared) == 16


@pytest.mark.parametrize("level", list(AuditLevel))
def test_every_audit_level_records_the_risk_before_the_call(
    rules: DataRiskRules, policies: PolicySet, level: AuditLevel
) -> None:
    values = [
        call("ok", "azure-openai", data_classes="phi"),
        call("risky", "openai", data_classes="phi"),
    ]
    result = ingest_values(TOPIC, 0, values, first_offset=20, ts_ms=TS_MS)
    entries = input_entries(level, result, rules)
    risks = [e for e in entries if e.event_type == RISK_TRIGGERED]
    assert [(e.source.offset, e.source.event_id) for e in risks] == [(21, "risky")]
    assert policies.audit.missing_fields(RISK_TRIGGERED, risks[0].payload) == ()
    if level is AuditLevel.FORENSIC:
        assert [e.event_type for e in entries][-2:] == [RISK_TRIGGERED, "aud.tool.invocation"]
    assert input_entries(level, result) == [e for e in entries if e.event_type != RISK_TRIGGERED]
