"""Audit event-type policy (DESIGN §8, issue 6): what each audit record type must carry.

`load_audit_policy(path, mode)` reads the alpha-solver seed shape (`audit_trail.json`):
`audit_config.retention_days` (the default retention) and `event_types` (id -> severity,
required_fields, pii_fields, retention_override, searchable, alert_security, alert_privacy).
`default_audit_policy()` is the seed's five types built in plus the types guardstream itself
writes (breaker transitions, budget and SLO decisions, dead-lettered input, forensic input,
policy changes, violations), with the fields their writers put in every payload.
`sealing.seal_masked` applies it to every record it seals.

Decisions:

* Built in, and a floor under a file: a file's entry for a type is laid over the built-in
  entry of that type key by key (what the file leaves out keeps the built-in value), and the
  built-in types a file does not mention stay as they are. The seed file alone therefore
  still knows guardstream's own types.
* Severity: when a type's entry has one, every record of that type is sealed with it, whatever
  its writer asked for (the seed's ``aud.budget.exceeded`` is "warning", a halting budget
  included). An entry without a severity leaves the writer's (guardstream's alert-driven types:
  ``aud.breaker.transition``, ``aud.budget.alert``, ``aud.slo.alert``).
* Required fields are top-level payload keys. A key present with a null value is present: the
  writer says it does not know (an ``aud.data.sensitive`` record of an input with no user).
  A missing one never passes silently, but never loses the record either: the record is
  sealed as written and an ``aud.audit.violation`` record (critical) follows it in the same
  chain, naming its record_id, event type and the missing fields.
* Unknown event types are allowed, sealed with their writer's severity and no required
  fields: guardstream adds types as it grows, and refusing to audit a decision is worse than
  auditing it unchecked.
* Retention: a type's retention is its ``retention_override`` or ``audit_config.retention_days``.
  Kafka retention is per topic and every type shares the audit topic (and its hash chains: a
  record deleted early would break the chain it is in), so the topic keeps records for
  `topic_retention_days`, the longest retention of any type; a type's retention is a minimum.
* ``pii_fields``, ``searchable`` and the alert flags are carried, not evaluated here: masking
  is by the classification patterns (`workers.policies.classification`). The rest of
  ``audit_config`` (immutable_storage, encryption_at_rest...) is carried in the published
  document and noted as not evaluated; hash chains are always on.
* The runtime mode changes nothing. The `mode` parameter keeps the loaders' signatures alike.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas import audit_names
from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import Severity
from workers.policies.files import (
    Problems,
    builtin_policy_document,
    load_policy_document,
    loaded_fields,
    require_kind,
    thawed,
)
from workers.settings import Mode

# Looked for in a policy directory, in this order.
FILE_STEMS = ("audit_trail", "audit")

VIOLATION = audit_names.AUDIT_VIOLATION
"""Follows a record that lacks required fields (see the module docstring)."""

DEFAULT_RETENTION_DAYS = 2555
"""The seed's audit_config.retention_days (7 years)."""

# The AuditRecord event_type rule.
_EVENT_TYPE = re.compile(r"^aud(\.[a-z0-9_]+)+$")
_MAX_EVENT_TYPE = 128

_FLAGS = ("searchable", "alert_security", "alert_privacy")
_ENTRY_KEYS = frozenset(
    {"id", "severity", "required_fields", "pii_fields", "retention_override", *_FLAGS}
)
_TOP_KEYS = frozenset({"version", "schema_version", "audit_config", "event_types"})

# Payload keys every forensic input record carries (workers.audit.inputs).
_INPUT_FIELDS = ["audit_level", "event"]


def _entry(
    type_id: str,
    severity: str | None,
    required: list[str],
    *,
    pii: list[str] | None = None,
    retention_override: int | None = None,
    searchable: bool = True,
    **flags: bool,
) -> tuple[str, dict[str, Any]]:
    entry: dict[str, Any] = {"id": type_id}
    if severity is not None:
        entry["severity"] = severity
    entry |= {
        "required_fields": required,
        "pii_fields": pii or [],
        "retention_override": retention_override,
        "searchable": searchable,
        **flags,
    }
    return type_id, entry


# The seed (configs/seeds/alpha-solver/audit_trail.json) and guardstream's own types, in the
# seed's shape. The required fields of guardstream's types are what their writers put in
# every payload (Decision.to_json() plus the sinks' extras); configs/audit.yaml annotates them.
BUILTIN_SPEC: Mapping[str, Any] = MappingProxyType(
    {
        "audit_config": {"retention_days": DEFAULT_RETENTION_DAYS},
        "event_types": dict(
            [
                # --- the seed's ---
                _entry(
                    "aud.orchestration.start",
                    "info",
                    ["session_id", "user", "intent", "timestamp", "ip_address"],
                    pii=["user", "ip_address"],
                ),
                _entry(
                    "aud.tool.invocation",
                    "info",
                    ["tool_id", "vendor", "cost", "duration_ms", "status", "tokens_used"],
                ),
                _entry(
                    "aud.risk.triggered",
                    "warning",
                    ["risk_id", "score", "mitigation_action", "escalation_path"],
                    retention_override=3650,
                    alert_security=True,
                ),
                _entry(
                    "aud.data.sensitive",
                    "critical",
                    ["classification", "handling_method", "jurisdiction", "user"],
                    pii=["data_sample", "user"],
                    retention_override=2555,
                    searchable=False,
                    alert_security=True,
                    alert_privacy=True,
                ),
                _entry(
                    "aud.budget.exceeded",
                    "warning",
                    ["budget_id", "limit", "actual", "action_taken"],
                    retention_override=1095,
                ),
                # --- guardstream's: breakers (workers.breakers.spec) ---
                _entry(
                    "aud.breaker.transition", None, ["key", "from", "to", "reason", "policy_id"]
                ),
                # --- the dependency cascade (workers.cascade) ---
                _entry(
                    "aud.dependency.changed",
                    None,
                    ["subject", "from", "to", "cause", "step", "trigger", "open_breakers"],
                ),
                # --- budgets (workers.budgets.spec: the decision plus the seed's budget fields)
                _entry(
                    "aud.budget.recovered",
                    "info",
                    ["key", "from", "to", "reason", "budget_id", "limit", "action_taken"],
                ),
                _entry(
                    "aud.budget.alert",
                    None,
                    ["key", "status", "fingerprint", "alert_kind", "budget_id"],
                ),
                _entry(
                    "aud.budget.control",
                    "warning",
                    ["key", "command", "target", "reason", "budget_id"],
                ),
                _entry(
                    "aud.budget.period_closed",
                    "info",
                    ["budget_id", "period", "spent_usd", "tokens", "requests"],
                ),
                _entry(
                    "aud.budget.late_spend",
                    "info",
                    ["budget_id", "event_ts", "spent_usd", "tokens"],
                ),
                # --- SLOs (workers.slos.spec; records are aud.slo.<what>) ---
                _entry("aud.slo.alert", None, ["key", "status", "fingerprint", "alert_kind"]),
                _entry("aud.slo.control", "warning", ["key", "command", "target", "reason"]),
                _entry(
                    "aud.slo.sla_report",
                    "info",
                    ["slo", "contract_id", "period", "credit_percent"],
                ),
                _entry(
                    "aud.slo.slo_period_closed",
                    "info",
                    ["slo", "period", "good", "total", "attainment", "met"],
                ),
                _entry("aud.slo.late_events", "info", ["slo", "good", "total"]),
                # --- input (workers.audit.inputs) ---
                _entry(
                    "aud.input.dead_lettered",
                    "warning",
                    ["topic", "partition", "offset", "error_kind", "error"],
                ),
                _entry("aud.cost.event", "info", _INPUT_FIELDS),
                _entry("aud.latency.event", "info", _INPUT_FIELDS),
                _entry("aud.clock.tick", "info", _INPUT_FIELDS),
                _entry("aud.breaker.override", "info", _INPUT_FIELDS),
                _entry("aud.input.event", "info", _INPUT_FIELDS),
                # --- policies and the audit trail itself ---
                _entry(
                    "aud.policy.changed",
                    "info",
                    ["kind", "name", "version", "previous_version", "changes"],
                ),
                _entry(VIOLATION, "critical", ["record_id", "event_type", "missing"]),
            ]
        ),
    }
)


@dataclass(frozen=True, slots=True)
class EventTypePolicy:
    """What one audit event type must carry, and how it is kept."""

    id: str
    severity: Severity | None
    """Every record of the type is sealed with it; None: its writer's severity stands."""
    required_fields: tuple[str, ...]
    pii_fields: tuple[str, ...]
    retention_override: int | None
    retention_days: int
    """`retention_override`, or the policy's default retention."""
    searchable: bool = True
    alert_security: bool = False
    alert_privacy: bool = False

    def missing(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        """The required fields `payload` lacks (a null value is present), in policy order."""
        return tuple(name for name in self.required_fields if name not in payload)


@dataclass(frozen=True, eq=False)
class AuditPolicy:
    """A validated audit event-type policy. `sealing.seal_masked` applies it."""

    name: str
    source: str
    document: PolicyDocument
    retention_days: int
    """audit_config.retention_days: a type without a retention_override is kept this long."""
    event_types: Mapping[str, EventTypePolicy]
    notes: tuple[str, ...] = ()
    """What the loader accepted but does not evaluate."""

    @property
    def version(self) -> str:
        return self.document.version

    @property
    def topic_retention_days(self) -> int:
        """The audit topic's retention: the longest of any type's (Kafka retention is per
        topic; a type's own retention is a minimum, see the module docstring)."""
        return max([self.retention_days, *(t.retention_days for t in self.event_types.values())])

    def get(self, event_type: str) -> EventTypePolicy | None:
        """The policy of `event_type`; None for a type nobody configured (allowed)."""
        return self.event_types.get(event_type)

    def severity_for(self, event_type: str, written: Severity) -> Severity:
        """The configured severity of `event_type`, or `written` when it has none."""
        entry = self.event_types.get(event_type)
        return written if entry is None or entry.severity is None else entry.severity

    def missing_fields(self, event_type: str, payload: Mapping[str, Any]) -> tuple[str, ...]:
        """The required fields of `event_type` that `payload` lacks (none for unknown types)."""
        entry = self.event_types.get(event_type)
        return () if entry is None else entry.missing(payload)

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> AuditPolicy:
        """The policy a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.AUDIT)
        return _from_spec(doc.spec, doc)


def load_audit_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> AuditPolicy:
    """Read and validate an audit policy file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.AUDIT)
    return _from_spec(spec, doc)


@functools.cache
def default_audit_policy(mode: Mode = Mode.DEVELOPMENT) -> AuditPolicy:
    """No policy file: the seed's types and guardstream's own (cached: it is immutable)."""
    spec, doc = builtin_policy_document(PolicyKind.AUDIT, BUILTIN_SPEC)
    return _from_spec(spec, doc)


# --- parsing ---


def _from_spec(spec: Mapping[str, Any], doc: PolicyDocument) -> AuditPolicy:
    problems = Problems(doc.source or doc.name)
    for key in spec:
        if key not in _TOP_KEYS:
            problems.note(str(key), "not evaluated")
    retention = _audit_config(spec.get("audit_config", {}), problems)
    raw_types = spec.get("event_types", {})
    if not isinstance(raw_types, dict):
        problems.error("event_types", "must be a mapping of event type id -> entry", raw_types)
        raw_types = {}
    builtin: Mapping[str, Any] = BUILTIN_SPEC["event_types"]
    merged = {key: thawed(entry) for key, entry in builtin.items()}
    given: set[str] = set()
    for key, entry in raw_types.items():
        path = f"event_types.{key}"
        if not isinstance(key, str) or not _EVENT_TYPE.match(key) or len(key) > _MAX_EVENT_TYPE:
            problems.error(path, "must be a dotted lower-case id starting with 'aud.'", key)
            continue
        if not isinstance(entry, dict):
            problems.error(path, "must be a mapping", entry)
            continue
        merged[key] = {**merged.get(key, {}), **entry}
        given.add(key)
    types: dict[str, EventTypePolicy] = {}
    for key, entry in merged.items():
        # Only the file's entries can be wrong: the built-in ones parse (a test says so).
        parsed = _event_type(key, entry, retention, problems if key in given else None)
        if parsed is not None:
            types[key] = parsed
    problems.raise_if_any()
    return AuditPolicy(
        **loaded_fields(doc, problems),
        retention_days=retention,
        event_types=MappingProxyType(types),
    )


def _audit_config(raw: Any, problems: Problems) -> int:
    """audit_config.retention_days (the built-in default when absent or invalid)."""
    if not isinstance(raw, dict):
        problems.error("audit_config", "must be a mapping", raw)
        return DEFAULT_RETENTION_DAYS
    for key in raw:
        if key != "retention_days":
            problems.note(f"audit_config.{key}", "not evaluated (carried in the document)")
    if raw.get("tamper_detection") is False:
        problems.note("audit_config.tamper_detection", "hash chains are always on")
    days = raw.get("retention_days", DEFAULT_RETENTION_DAYS)
    if not _is_days(days):
        problems.error("audit_config.retention_days", "must be an integer >= 1 (days)", days)
        return DEFAULT_RETENTION_DAYS
    return int(days)


def _is_days(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _event_type(
    key: str, entry: Mapping[str, Any], default_days: int, problems: Problems | None
) -> EventTypePolicy | None:
    """One entry; `problems` None for a built-in entry (it cannot be wrong)."""
    check = problems or Problems("<built-in>")
    path = f"event_types.{key}"
    errors = len(check.errors)
    if "id" in entry and entry["id"] != key:
        check.error(f"{path}.id", f"must equal its key {key!r}", entry["id"])
    severity: Severity | None = None
    raw_severity = entry.get("severity")
    if raw_severity is not None:
        try:
            severity = Severity(raw_severity)
        except ValueError:
            allowed = ", ".join(s.value for s in Severity)
            check.error(f"{path}.severity", f"must be one of {allowed}", raw_severity)
    for field in ("required_fields", "pii_fields"):
        if not _names(entry.get(field, [])):
            check.error(f"{path}.{field}", "must be a list of non-empty strings", entry[field])
    override = entry.get("retention_override")
    if override is not None and not _is_days(override):
        check.error(
            f"{path}.retention_override", "must be null or an integer >= 1 (days)", override
        )
    for flag in _FLAGS:
        if flag in entry and not isinstance(entry[flag], bool):
            check.error(f"{path}.{flag}", "must be true or false", entry[flag])
    for extra in entry:
        if extra not in _ENTRY_KEYS:
            check.note(f"{path}.{extra}", "not evaluated")
    if len(check.errors) > errors:
        if problems is None:  # pragma: no cover - the built-in spec is tested
            raise AssertionError("\n".join(check.errors))
        return None
    return EventTypePolicy(
        id=key,
        severity=severity,
        required_fields=tuple(dict.fromkeys(entry.get("required_fields", []))),
        pii_fields=tuple(dict.fromkeys(entry.get("pii_fields", []))),
        retention_override=override,
        retention_days=override if override is not None else default_days,
        searchable=entry.get("searchable", True),
        alert_security=entry.get("alert_security", False),
        alert_privacy=entry.get("alert_privacy", False),
    )
