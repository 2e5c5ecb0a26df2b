"""Audit event-type policy: the seed's types and guardstream's own, enforced at sealing."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.audit import AuditSource
from schemas.clock import ClockTick
from schemas.control import ControlCommand, ControlKind
from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import Severity, from_epoch_ms
from tests.support.alerts import firing_alert
from tests.support.calls import audited_call, ingest_values
from tests.unit import test_budget_engine as budgets
from topics.catalog import DAY_MS, TopicName
from workers.app import catalog_for
from workers.audit.chain import AuditChain, record_hash_ok
from workers.audit.inputs import input_entries
from workers.audit.sealing import SENSITIVE, seal_masked
from workers.budgets.spec import _audit_type as budget_audit_type
from workers.budgets.spec import _required_fields as budget_fields
from workers.decisions import AlertDecision, ControlDecision, Kernel, TransitionDecision
from workers.errors import ConfigError
from workers.kernels.slo_outputs import LateCounts, SloPeriodClosed
from workers.masking.masker import default_masker
from workers.policies.audit_event_types import (
    BUILTIN_SPEC,
    FILE_STEMS,
    VIOLATION,
    AuditPolicy,
    default_audit_policy,
    load_audit_policy,
)
from workers.policies.policy_set import load_audit_types
from workers.settings import AuditLevel, Settings
from workers.slos.engine import SloEngine
from workers.slos.spec import _audit_type as slo_audit_type

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SEED = CONFIGS / "seeds" / "alpha-solver" / "audit_trail.json"
# SHA-256 of the seed as the project was given it (../shared/seed-configs): the copy in
# configs/seeds must stay byte-identical, checked without depending on that folder.
SEED_SHA256 = "53d61ac2e7f448a707e9b5f8e23ef579dc21f392e42296211b8b070ff9926de4"
SEED_SPEC: dict[str, Any] = json.loads(SEED.read_text())

# The SLO engine tests' policy and outage scenario (imported by name: that module is not
# mypy-strict clean, and these tests only need its fixtures).
slos: Any = importlib.import_module("tests.unit.test_slo_engine")

TS = 1_795_000_000_000
VERSION = "b" * 64
EMAIL = "Jane.Doe@Example.com"
BUILTIN_SPEC_PLAIN: dict[str, Any] = json.loads(json.dumps(dict(BUILTIN_SPEC)))

# guardstream's own types: (id, severity or None for the writer's, required fields)
OWN_TYPES: list[tuple[str, str | None, tuple[str, ...]]] = [
    ("aud.breaker.transition", None, ("key", "from", "to", "reason", "policy_id")),
    (
        "aud.budget.recovered",
        "info",
        ("key", "from", "to", "reason", "budget_id", "limit", "action_taken"),
    ),
    ("aud.budget.alert", None, ("key", "status", "fingerprint", "alert_kind", "budget_id")),
    ("aud.budget.control", "warning", ("key", "command", "target", "reason", "budget_id")),
    (
        "aud.budget.period_closed",
        "info",
        ("budget_id", "period", "spent_usd", "tokens", "requests"),
    ),
    ("aud.budget.late_spend", "info", ("budget_id", "event_ts", "spent_usd", "tokens")),
    ("aud.slo.alert", None, ("key", "status", "fingerprint", "alert_kind")),
    ("aud.slo.control", "warning", ("key", "command", "target", "reason")),
    ("aud.slo.sla_report", "info", ("slo", "contract_id", "period", "credit_percent")),
    ("aud.slo.slo_period_closed", "info", ("slo", "period", "good", "total", "attainment", "met")),
    ("aud.slo.late_events", "info", ("slo", "good", "total")),
    ("aud.input.dead_lettered", "warning", ("topic", "partition", "offset", "error_kind", "error")),
    ("aud.cost.event", "info", ("audit_level", "event")),
    ("aud.latency.event", "info", ("audit_level", "event")),
    ("aud.clock.tick", "info", ("audit_level", "event")),
    ("aud.breaker.override", "info", ("audit_level", "event")),
    ("aud.input.event", "info", ("audit_level", "event")),
    ("aud.policy.changed", "info", ("kind", "name", "version", "previous_version", "changes")),
    ("aud.audit.violation", "critical", ("record_id", "event_type", "missing")),
]


def write(tmp_path: Path, spec: dict[str, Any], name: str = "audit.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def seal(policy: AuditPolicy | None, event_type: str, payload: dict[str, Any], **kw: Any) -> Any:
    chain = kw.pop("chain", None) or AuditChain("budgets-p0")
    return seal_masked(
        chain,
        default_masker(),
        event_type,
        ts_ms=TS,
        severity=kw.pop("severity", Severity.INFO),
        policy_version=VERSION,
        payload=payload,
        policy=policy,
        **kw,
    )


# --- the seed ---


def test_the_seed_copy_is_byte_identical_to_the_given_seed() -> None:
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == SEED_SHA256


@pytest.mark.parametrize("type_id", sorted(SEED_SPEC["event_types"]))
def test_every_seed_type_is_parsed_with_its_severity_fields_and_retention(type_id: str) -> None:
    policy = load_audit_policy(SEED)
    raw = SEED_SPEC["event_types"][type_id]
    entry = policy.event_types[type_id]
    assert entry.severity == Severity(raw["severity"])
    assert entry.required_fields == tuple(raw["required_fields"])
    assert entry.pii_fields == tuple(raw["pii_fields"])
    assert entry.retention_override == raw["retention_override"]
    assert entry.retention_days == (raw["retention_override"] or policy.retention_days)
    assert entry.searchable is raw["searchable"]
    assert entry.alert_security is raw.get("alert_security", False)
    assert entry.alert_privacy is raw.get("alert_privacy", False)
    # built in: the default policy knows the seed's types exactly as the file says
    assert default_audit_policy().event_types[type_id] == entry


def test_the_seed_loads_from_its_directory_by_stem_and_keeps_guardstreams_own_types() -> None:
    policy = load_audit_policy(SEED.parent)
    assert FILE_STEMS[0] == SEED.stem
    assert policy.source == str(SEED)
    assert policy.retention_days == 2555
    assert policy.document.kind is PolicyKind.AUDIT
    assert set(policy.event_types) == set(default_audit_policy().event_types)
    assert policy.topic_retention_days == 3650  # aud.risk.triggered's override
    assert any(n.startswith("audit_config.encryption_at_rest") for n in policy.notes)


def test_the_annotated_config_is_the_built_in_policy_written_out() -> None:
    policy = load_audit_policy(CONFIGS / "audit.yaml")
    assert dict(policy.event_types) == dict(default_audit_policy().event_types)
    assert policy.notes == ()


# --- guardstream's own ---


@pytest.mark.parametrize(("type_id", "severity", "required"), OWN_TYPES)
def test_guardstreams_own_types_are_built_in(
    type_id: str, severity: str | None, required: tuple[str, ...]
) -> None:
    entry = default_audit_policy().event_types[type_id]
    assert entry.severity == (None if severity is None else Severity(severity))
    assert entry.required_fields == required
    assert entry.retention_days == 2555


def test_the_default_policy_is_built_in_cached_and_its_topic_retention_is_the_longest() -> None:
    policy = default_audit_policy()
    assert policy is default_audit_policy()
    assert policy.source == "<built-in>"
    assert policy.topic_retention_days == 3650
    assert policy.version == PolicyDocument.from_spec("audit", "x", BUILTIN_SPEC_PLAIN).version
    assert AuditPolicy.from_document(policy.document).event_types == policy.event_types


def test_the_input_writers_payloads_carry_their_required_fields() -> None:
    topic = "p.tool-invocations"
    values = [
        audited_call("ok-1", TS, "success"),
        audited_call("bad-1", TS, "error"),
        b"{not json",
        json.dumps({"type": "clock", "ts": TS + 1000}).encode(),
    ]
    result = ingest_values(topic, 0, values, first_offset=0, ts_ms=TS)
    entries = input_entries(AuditLevel.FORENSIC, result)
    types = {entry.event_type for entry in entries}
    assert types == {"aud.tool.invocation", "aud.input.dead_lettered", "aud.clock.tick"}
    policy = default_audit_policy()
    for entry in entries:
        assert policy.missing_fields(entry.event_type, entry.payload) == (), entry


def test_the_decision_writers_payloads_carry_their_required_fields() -> None:
    head: dict[str, Any] = {"key": "openai/chat", "ts_ms": TS, "event_id": "e-1"}
    transition = TransitionDecision(
        kernel=Kernel.BREAKER,
        policy_version=VERSION,
        from_state="closed",
        to_state="open",
        reason="failure rate 60 % >= 50 %",
        policy_id="cb.vendor.default",
        **head,
    )
    labels = {"slo": "slo.chat"}
    alert = firing_alert(
        "slo_burn_rate", Severity.PAGE, labels, "burning", ts_ms=TS, policy_version=VERSION
    )
    command = ControlCommand(
        command_id="c-1",
        target="openai/chat",
        kind=ControlKind.DOWNGRADE,
        parameters={},
        reason="burning",
        ts=from_epoch_ms(TS),
        policy_version=VERSION,
        evidence=["e-1"],
    )
    policy = default_audit_policy()
    pairs = [
        ("aud.breaker.transition", transition),
        (
            "aud.slo.alert",
            AlertDecision(kernel=Kernel.SLO, policy_version=VERSION, alert=alert, **head),
        ),
        (
            "aud.slo.control",
            ControlDecision(kernel=Kernel.SLO, policy_version=VERSION, command=command, **head),
        ),
    ]
    for type_id, decision in pairs:
        assert policy.missing_fields(type_id, decision.to_json()) == (), type_id
    sensitive = default_masker().mask({"note": EMAIL}).findings
    notice = default_masker().sensitive_payload(sensitive, user=None)
    assert policy.missing_fields(SENSITIVE, notice) == ()  # user null: present, not known


# --- enforcement at sealing ---


def test_a_record_missing_required_fields_is_kept_and_followed_by_a_violation() -> None:
    payload = {"budget_id": "bud.team", "limit": "100", "action_taken": "halt"}  # no actual
    record, violation = seal(None, "aud.budget.exceeded", payload, severity=Severity.CRITICAL)
    assert record.payload == payload  # written as it came
    assert violation.event_type == VIOLATION
    assert violation.severity is Severity.CRITICAL
    assert violation.payload == {
        "record_id": record.record_id,
        "event_type": "aud.budget.exceeded",
        "missing": ["actual"],
    }
    assert violation.policy_version == default_audit_policy().version
    assert violation.ts == record.ts
    assert (record.seq, violation.seq, violation.prev_hash) == (0, 1, record.hash)
    assert record_hash_ok(record)
    assert record_hash_ok(violation)


def test_the_configured_severity_wins_over_the_writers() -> None:
    full = {"budget_id": "b", "limit": "1", "actual": "2", "action_taken": "halt"}
    [record] = seal(None, "aud.budget.exceeded", full, severity=Severity.CRITICAL)
    assert record.severity is Severity.WARNING  # the seed says warning
    [invocation] = seal(
        None,
        "aud.tool.invocation",
        {"tool_id": "a/b", "vendor": "a", "cost": "0", "duration_ms": 1, "status": "error"}
        | {"tokens_used": 0},
        severity=Severity.WARNING,
    )
    assert invocation.severity is Severity.INFO


def test_a_type_without_a_severity_and_an_unknown_type_keep_the_writers() -> None:
    transition = {"key": "k", "from": "closed", "to": "open", "reason": "r", "policy_id": "p"}
    [record] = seal(None, "aud.breaker.transition", transition, severity=Severity.WARNING)
    assert record.severity is Severity.WARNING
    [unknown] = seal(None, "aud.something.new", {}, severity=Severity.PAGE)
    assert (unknown.event_type, unknown.severity) == ("aud.something.new", Severity.PAGE)


def test_a_null_required_field_is_present() -> None:
    payload = {"budget_id": "b", "limit": None, "actual": None, "action_taken": "alert"}
    assert [r.event_type for r in seal(None, "aud.budget.exceeded", payload)] == [
        "aud.budget.exceeded"
    ]


def test_masked_record_then_notice_then_violations_in_one_chain() -> None:
    chain = AuditChain("input-p3")
    records = seal(
        None,
        "aud.tool.invocation",
        {"tool_id": "openai/chat", "vendor": "openai", "note": EMAIL},
        chain=chain,
        source=AuditSource(topic="t", partition=3, offset=9),
    )
    record, notice, violation = records
    assert [r.event_type for r in records] == ["aud.tool.invocation", SENSITIVE, VIOLATION]
    assert violation.payload["missing"] == ["cost", "duration_ms", "status", "tokens_used"]
    assert violation.payload["record_id"] == record.record_id
    assert violation.source == record.source
    assert [r.seq for r in records] == [0, 1, 2]
    assert [r.prev_hash for r in records[1:]] == [record.hash, notice.hash]
    assert all(record_hash_ok(r) for r in records)
    assert chain.seq == 3


def test_a_policy_file_lays_its_entries_over_the_built_in_ones(tmp_path: Path) -> None:
    spec = {
        "audit_config": {"retention_days": 30},
        "event_types": {
            "aud.breaker.transition": {"severity": "critical"},
            "aud.team.custom": {"severity": "info", "required_fields": ["who"]},
        },
    }
    policy = load_audit_policy(write(tmp_path, spec))
    transition = policy.event_types["aud.breaker.transition"]
    assert transition.severity is Severity.CRITICAL
    assert transition.required_fields == ("key", "from", "to", "reason", "policy_id")
    assert transition.retention_days == 30
    assert policy.event_types["aud.budget.exceeded"].retention_days == 1095
    assert policy.topic_retention_days == 3650
    [record, violation] = seal(policy, "aud.team.custom", {}, severity=Severity.WARNING)
    assert record.severity is Severity.INFO
    assert violation.payload["missing"] == ["who"]
    assert violation.policy_version == policy.version


def test_the_topic_retention_follows_the_longest_type(tmp_path: Path) -> None:
    spec = {
        "audit_config": {"retention_days": 4000},
        "event_types": {"aud.budget.exceeded": {"retention_override": 5000}},
    }
    assert load_audit_policy(write(tmp_path, spec)).topic_retention_days == 5000
    spec = {"audit_config": {"retention_days": 4000}}
    assert load_audit_policy(write(tmp_path, spec)).topic_retention_days == 4000


def test_the_audit_topic_is_created_with_the_policys_retention(tmp_path: Path) -> None:
    """What `topics create` and the worker create the audit topic with."""
    settings = Settings()
    audit = TopicName.AUDIT
    assert catalog_for(settings).spec(audit).retention_ms == 3650 * DAY_MS  # built-in types
    spec = {"audit_config": {"retention_days": 400}, "event_types": {}}
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    write(policy_dir, spec)
    (policy_dir / "budgets.yaml").write_text("budgets: {}\n")
    from_dir = load_audit_types(policy_dir, settings.mode)
    assert catalog_for(settings, from_dir).spec(audit).retention_ms == 3650 * DAY_MS
    spec["event_types"] = {  # every built-in type overridden down to 400 days
        type_id: {"retention_override": 400} for type_id in default_audit_policy().event_types
    }
    write(policy_dir, spec)
    shorter = load_audit_types(policy_dir, settings.mode)
    assert catalog_for(settings, shorter).spec(audit).retention_ms == 400 * DAY_MS
    assert load_audit_types(policy_dir / "budgets.yaml", settings.mode) is default_audit_policy(
        settings.mode
    )
    assert load_audit_types(None, settings.mode) is default_audit_policy(settings.mode)


# --- bad policies ---


def test_a_bad_policy_names_file_path_and_value_for_every_problem(tmp_path: Path) -> None:
    spec = {
        "audit_config": {"retention_days": "forever"},
        "event_types": {
            "aud.budget.exceeded": {"severity": "urgent", "required_fields": "budget_id"},
            "aud.risk.triggered": {"id": "aud.risk.other", "retention_override": -1},
            "aud.data.sensitive": {"pii_fields": [""], "searchable": "no"},
            "Audit.Bad": {"severity": "info"},
            "aud.not.a.mapping": ["info"],
        },
    }
    path = write(tmp_path, spec)
    with pytest.raises(ConfigError) as caught:
        load_audit_policy(path)
    lines = str(caught.value).splitlines()
    expected = [
        "audit_config.retention_days: must be an integer >= 1 (days), not 'forever'",
        "event_types.aud.budget.exceeded.severity: must be one of info, warning, critical, "
        "page, not 'urgent'",
        "event_types.aud.budget.exceeded.required_fields: must be a list of non-empty "
        "strings, not 'budget_id'",
        "event_types.aud.risk.triggered.id: must equal its key 'aud.risk.triggered', "
        "not 'aud.risk.other'",
        "event_types.aud.risk.triggered.retention_override: must be null or an integer >= 1 "
        "(days), not -1",
        "event_types.aud.data.sensitive.pii_fields: must be a list of non-empty strings, not ['']",
        "event_types.aud.data.sensitive.searchable: must be true or false, not 'no'",
        "event_types.Audit.Bad: must be a dotted lower-case id starting with 'aud.', "
        "not 'Audit.Bad'",
        "event_types.aud.not.a.mapping: must be a mapping, not ['info']",
    ]
    assert sorted(lines) == sorted(f"{path}: {line}" for line in expected)


def test_event_types_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, {"event_types": ["aud.x"]})
    with pytest.raises(ConfigError, match=r"audit.yaml: event_types: must be a mapping"):
        load_audit_policy(path)


def test_a_document_of_another_kind_is_refused() -> None:
    doc = PolicyDocument.from_spec(PolicyKind.BUDGETS, "budgets", {"budgets": {}}, source="b.yaml")
    with pytest.raises(ConfigError, match="policy kind must be audit"):
        AuditPolicy.from_document(doc)


# --- what the sinks really write (the engines' decisions, as the sinks audit them) ---


def test_the_budget_sinks_records_carry_their_required_fields() -> None:
    e = budgets.engine()
    day, minute = budgets.DAY, budgets.MIN
    events: list[Any] = [budgets.call(n * 15, "2", user=f"u{n}") for n in range(3)]  # tripwire
    events += [budgets.call(50 + n, "20", user=f"v{n}") for n in range(5)]  # to halt
    events += [ClockTick.at(budgets.T0 + day + 2 * minute)]  # rollover: close, resolve, allow
    events += [budgets.call(99, "5", ts_ms=budgets.T0 + minute)]  # late
    policy = default_audit_policy()
    seen: set[str] = set()
    for event in events:
        for decision in e.apply(event):
            type_id = budget_audit_type(decision)
            payload = {**decision.to_json(), **budget_fields(e.ledgers.get(decision.key), decision)}
            seen.add(type_id)
            assert policy.get(type_id) is not None, type_id
            assert policy.missing_fields(type_id, payload) == (), (type_id, payload)
    assert seen == {
        "aud.budget.exceeded",
        "aud.budget.recovered",
        "aud.budget.alert",
        "aud.budget.control",
        "aud.budget.period_closed",
        "aud.budget.late_spend",
    }


def test_the_slo_sinks_records_carry_their_required_fields() -> None:
    engine = SloEngine(slos.policy())
    decisions = [d for event in slos.outage() for d in engine.apply(event)]
    # Calendar periods closing and late counts (the engine's own fact-building code).
    key = next(iter(engine.info))
    outputs = [SloPeriodClosed(TS, TS - 3_600_000, TS, "2026-11-18T00", 9, 10, 0.9, False)]
    decisions += engine._decide(key, [*outputs, LateCounts(TS, 1, 2)], "e-1")
    policy = default_audit_policy()
    seen: set[str] = set()
    for decision in decisions:
        type_id = slo_audit_type(decision)
        seen.add(type_id)
        assert policy.get(type_id) is not None, type_id
        assert policy.missing_fields(type_id, decision.to_json()) == (), type_id
    assert seen == {
        "aud.slo.alert",
        "aud.slo.control",
        "aud.slo.sla_report",
        "aud.slo.slo_period_closed",
        "aud.slo.late_events",
    }
