"""Every wire model round-trips; per-model invariants (alerts, audit, policy, state)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from schemas import (
    GENESIS_HASH,
    Alert,
    AuditRecord,
    Availability,
    BreakerState,
    BudgetState,
    ControlCommand,
    CostEvent,
    DeadLetter,
    DeadLetterKind,
    DependencyState,
    LatencyEvent,
    ObjectiveState,
    PolicyDocument,
    PolicyKind,
    SlaState,
    SloState,
    ToolInvocation,
    alert_fingerprint,
    canonical_bytes,
    decode,
    encode,
    policy_version,
)
from schemas.budget_spend import BudgetSpend
from schemas.clock import ClockTick
from schemas.jsonschema import ALL_MODELS
from schemas.override import BreakerOverride
from schemas.slo_counts import SketchBins, SloCounts
from schemas.watermark import SourceWatermark

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SPEC = {"breakers": {"cb.vendor.default": {"failure_threshold": 5, "error_types": ["500"]}}}
VERSION = policy_version(SPEC)
LABELS = {"vendor": "openai", "tool": "chat"}

SAMPLES: dict[str, BaseModel] = {
    "ClockTick": ClockTick(ts=T0),
    "SourceWatermark": SourceWatermark(
        source_topic="guardstream.tool-invocations", source_partition=1, ts_ms=1_795_000_000_000
    ),
    "BudgetSpend": BudgetSpend(
        key="bud.user/ana",
        budget_id="bud.user",
        rows=[(1_795_000_000_000, 4_200_000, 400, 1, "e1", 4_200_000)],
        source_topic="guardstream.tool-invocations",
        source_partition=2,
    ),
    "BreakerOverride": BreakerOverride(
        ts=T0, vendor="openai", tool="chat", action="force_open", actor="oncall", reason="INC-7"
    ),
    "ToolInvocation": ToolInvocation(
        event_id="e1",
        ts=T0,
        vendor="openai",
        tool="chat",
        status="error",
        error_type="503",
        duration_ms=1500.25,
        tokens_in=10,
        cost_usd=Decimal("0.0001"),
        user="u1",
        attributes={"region": "eu"},
    ),
    "CostEvent": CostEvent(
        event_id="c1", ts=T0, team="search", cost_usd=Decimal("12.50"), tokens=5, source="billing"
    ),
    "LatencyEvent": LatencyEvent(
        event_id="l1", ts=T0, vendor="openai", tool="chat", latency_ms=42, kind="probe"
    ),
    "Alert": Alert(
        alert_id="a1",
        fingerprint=alert_fingerprint("breaker_open", LABELS),
        kind="breaker_open",
        severity="critical",
        status="resolved",
        labels=LABELS,
        summary="openai/chat open",
        value=0.62,
        threshold=0.5,
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=5),
        policy_version=VERSION,
        evidence=["e1", "e2"],
    ),
    "AuditRecord": AuditRecord(
        record_id="r1",
        chain="breakers-0",
        seq=0,
        prev_hash=GENESIS_HASH,
        hash="a" * 64,
        event_type="aud.breaker.transition",
        ts=T0,
        severity="warning",
        policy_version=VERSION,
        source={"topic": "guardstream.tool-invocations", "partition": 3, "offset": 42},
        payload={"from": "closed", "to": "open", "failure_rate": 0.62, "cost_usd": "1.25"},
    ),
    "BreakerState": BreakerState(
        key="openai/chat",
        state="open",
        since=T0,
        retry_at=T0 + timedelta(seconds=60),
        attempt=1,
        failure_rate=0.62,
        calls_in_window=100,
        fallback_action="use_cache",
        policy_id="cb.vendor.default",
        policy_version=VERSION,
        updated_at=T0,
    ),
    "BudgetState": BudgetState(
        budget_id="bud.global.monthly",
        period="monthly",
        period_start=T0,
        period_end=T0 + timedelta(days=31),
        spent_usd=Decimal("50001.5"),
        limit_usd=Decimal(50000),
        remaining_usd=Decimal("-1.5"),
        utilization=1.00003,
        projected_spend_usd=Decimal("60000"),
        thresholds_crossed=[50, 80, 95, 100],
        action="halt",
        decided_by="threshold:100",
        rate_window_ms=60000,
        request_rate_limit=600,
        requests_remaining=0,
        rate_limit_reset_at=T0,
        policy_version=VERSION,
        updated_at=T0,
    ),
    "SloState": SloState(
        slo_id="availability",
        labels=LABELS,
        target=0.995,
        period=timedelta(days=30),
        good=990,
        total=1000,
        error_budget_remaining=-1.0,
        burn_rates={"5m": 14.4, "1h": 15.0},
        firing=["page:1h/5m"],
        sla_tier="premium",
        policy_version=VERSION,
        updated_at=T0,
    ),
    "ObjectiveState": ObjectiveState(
        slo_id="fusion_latency_p95",
        key="objective:fusion_latency_p95",
        metric="latency_quantile",
        window_ms=3_600_000,
        value=3120.5,
        level="warning",
        target=2000,
        warning_at=3000,
        critical_at=5000,
        events_in_window=1200,
        policy_version=VERSION,
        updated_at=T0,
    ),
    "SlaState": SlaState(
        slo_id="sla.premium",
        key="sla:sla.premium",
        tier="premium",
        period_start=T0,
        period_end=T0,
        total=1000,
        good=993,
        availability_percent=99.3,
        p50_ms=180.0,
        p99_ms=950.0,
        credit_percent=10.0,
        policy_version=VERSION,
        updated_at=T0,
    ),
    "DependencyState": DependencyState(
        node="dep.tool.t001",
        subject="tool:t001",
        availability=Availability.UNAVAILABLE,
        previous=Availability.AVAILABLE,
        cause=["dep.tool.t001", "dep.vendor.openai"],
        reason="dep.vendor.openai is down: dep.tool.t001 -> dep.vendor.openai",
        criticality="essential",
        trigger="vendor:openai down",
        breaker_key="openai",
        policy_version=VERSION,
        updated_at=T0,
    ),
    "SloCounts": SloCounts(
        key="slo:availability/openai",
        target_kind="slo",
        target_id="availability",
        labels={"vendor": "openai"},
        rows=[
            (1_795_000_000_000, 10, 9, 0.0, 0, None, "e1"),
            (
                1_795_000_001_000,
                3,
                3,
                0.0,
                3,
                SketchBins(bins=[(345, 2), (400, 1)], min=120.0, max=480.0),
                "e4",
            ),
        ],
        source_topic="guardstream.tool-invocations",
        source_partition=0,
    ),
    "ControlCommand": ControlCommand(
        command_id="cmd1",
        target="team:search",
        kind="downgrade",
        parameters={"FUSION_MODE": "baseline_only", "ENTROPY_REDUCTION_TARGET": "0.50"},
        reason="3 consecutive burn-rate breaches",
        ts=T0,
        policy_version=VERSION,
        evidence=["e1"],
    ),
    "DeadLetter": DeadLetter.build(
        original=b'{"cost_usd":-1,\xff}',
        original_key=b"openai/chat",
        topic="t",
        partition=1,
        offset=7,
        error_kind=DeadLetterKind.SCHEMA,
        error="cost_usd: ...",
        record_ts=T0,
    ),
    "PolicyDocument": PolicyDocument.from_spec(
        "breakers", "circuit_breakers", SPEC, source="configs/breakers.yaml", applied_at=T0
    ),
}


def test_every_registered_model_has_a_sample() -> None:
    assert SAMPLES.keys() == ALL_MODELS.keys()
    for name, sample in SAMPLES.items():
        assert type(sample) is ALL_MODELS[name]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name: str) -> None:
    sample = SAMPLES[name]
    wire = encode(sample)
    assert isinstance(wire, bytes)
    again = decode(type(sample), wire)
    assert again == sample
    assert encode(again) == wire  # byte-stable: re-encoding a decoded record changes nothing
    assert orjson.loads(wire) == sample.model_dump(mode="json")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_frozen(name: str) -> None:
    sample = SAMPLES[name]
    field = next(iter(type(sample).model_fields))
    with pytest.raises(ValidationError):
        setattr(sample, field, None)


def test_money_is_a_string_on_the_wire() -> None:
    wire = orjson.loads(encode(SAMPLES["BudgetState"]))
    assert (wire["spent_usd"], wire["remaining_usd"], wire["limit_usd"]) == (
        "50001.5",
        "-1.5",
        "50000",
    )


# --- alerts -----------------------------------------------------------------------------------


def test_fingerprint_is_stable_short_hex_and_discriminating() -> None:
    fp = alert_fingerprint("breaker_open", {"vendor": "openai", "tool": "chat"})
    assert fp == alert_fingerprint("breaker_open", {"tool": "chat", "vendor": "openai"})
    assert len(fp) == 32
    assert int(fp, 16) >= 0
    assert fp != alert_fingerprint("breaker_half_open", LABELS)
    assert fp != alert_fingerprint("breaker_open", {**LABELS, "tool": "embed"})
    # Pinned: a change to the encoding would silently split every open alert in two.
    canonical = b'{"kind":"breaker_open","labels":{"tool":"chat","vendor":"openai"}}'
    assert fp == hashlib.sha256(canonical).hexdigest()[:32]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "resolved", "ends_at": None},
        {"status": "firing", "ends_at": T0 + timedelta(minutes=1)},
        {"status": "resolved", "ends_at": T0 - timedelta(minutes=1)},
        {"fingerprint": "not-hex"},
        {"severity": "fatal"},
        {"policy_version": "v1"},
        {"evidence": [f"e{i}" for i in range(33)]},
    ],
)
def test_alert_rejects(changes: dict[str, Any]) -> None:
    fields = {**SAMPLES["Alert"].model_dump(), **changes}
    with pytest.raises(ValidationError):
        Alert.model_validate(fields)


# --- audit ------------------------------------------------------------------------------------


def test_canonical_bytes_excludes_hash_and_sorts_keys() -> None:
    record = SAMPLES["AuditRecord"]
    assert isinstance(record, AuditRecord)
    data = canonical_bytes(record)
    assert b'"hash"' not in data
    assert data == canonical_bytes(record.model_copy(update={"hash": "b" * 64}))
    assert data == canonical_bytes(dict(reversed(record.model_dump(mode="json").items())))
    assert list(orjson.loads(data)) == sorted(orjson.loads(data))
    assert data != canonical_bytes(record.model_copy(update={"seq": 1}))


def test_canonical_bytes_refuses_python_mode_values() -> None:
    record = SAMPLES["AuditRecord"]
    with pytest.raises(TypeError, match="JSON-mode"):
        canonical_bytes(record.model_dump())  # raw datetime / enum values


@pytest.mark.parametrize(
    "changes",
    [
        {"event_type": "breaker.transition"},
        {"seq": -1},
        {"prev_hash": "0" * 63},
        {"hash": "X" * 64},
    ],
)
def test_audit_record_rejects(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AuditRecord.model_validate({**SAMPLES["AuditRecord"].model_dump(), **changes})


def test_audit_accepts_the_seed_event_types() -> None:
    base = SAMPLES["AuditRecord"].model_dump()
    for event_type in ("aud.tool.invocation", "aud.data.sensitive", "aud.budget.exceeded"):
        assert AuditRecord.model_validate({**base, "event_type": event_type})


# --- policy -----------------------------------------------------------------------------------


def test_policy_version_is_the_spec_content_hash() -> None:
    document = SAMPLES["PolicyDocument"]
    assert isinstance(document, PolicyDocument)
    assert document.kind is PolicyKind.BREAKERS
    canonical = orjson.dumps(SPEC, option=orjson.OPT_SORT_KEYS)
    assert document.version == hashlib.sha256(canonical).hexdigest()
    entry = {"error_types": ["500"], "failure_threshold": 5}
    reordered = {"breakers": {"cb.vendor.default": entry}}
    assert policy_version(reordered) == document.version
    assert policy_version({"breakers": {}}) != document.version


def test_policy_with_a_tampered_spec_is_rejected() -> None:
    wire = orjson.loads(encode(SAMPLES["PolicyDocument"]))
    wire["spec"]["breakers"]["cb.vendor.default"]["failure_threshold"] = 500
    with pytest.raises(ValidationError, match="version"):
        decode(PolicyDocument, orjson.dumps(wire))


def test_policy_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        PolicyDocument.from_spec("nonsense", "x", {})


# --- state ------------------------------------------------------------------------------------


def test_slo_period_is_iso8601_on_the_wire() -> None:
    assert orjson.loads(encode(SAMPLES["SloState"]))["period"] == "P30D"


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("BreakerState", {"state": "ajar"}),
        ("BreakerState", {"failure_rate": 1.5}),
        ("BudgetState", {"action": "deny"}),
        ("BudgetState", {"period": "fortnightly"}),
        ("BudgetState", {"spent_usd": Decimal(-1)}),
        ("SloState", {"target": 1.0}),
        ("SloState", {"good": -1}),
        ("ControlCommand", {"kind": "reboot"}),
    ],
)
def test_state_and_control_reject(name: str, changes: dict[str, Any]) -> None:
    sample = SAMPLES[name]
    with pytest.raises(ValidationError):
        type(sample).model_validate({**sample.model_dump(), **changes})


def test_internal_records_ignore_fields_from_newer_versions() -> None:
    wire = orjson.loads(encode(SAMPLES["BreakerState"]))
    wire["added_in_v2"] = 1
    assert decode(BreakerState, orjson.dumps(wire)) == SAMPLES["BreakerState"]
