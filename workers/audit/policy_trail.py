"""Policy changes in the audit trail (`aud.policy.changed`, DESIGN §8, issue 6). Pure.

Every decision record names the version of the policy it was made under; the `policy` chain
says what those versions were. A worker starting with a policy set compares it with the
chain's newest record and seals one `aud.policy.changed` record per kind whose version
differs (the first start records every kind): which ids were added, removed or changed, the
previous version, and the whole set as it now is (`documents`). So the newest record alone
holds the current set — a starting worker reads only the head of the chain — and
`replay --source audit` can re-run a trail under the very policies recorded with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import audit_names as names
from schemas.policy import PolicyDocument, PolicyKind
from workers.errors import ConfigError
from workers.policies.audit_event_types import AuditPolicy
from workers.policies.breakers import BreakerPolicy
from workers.policies.budgets import BudgetPolicy
from workers.policies.classification import ClassificationPolicy
from workers.policies.dependencies import DependencyPolicy
from workers.policies.policy_set import PolicySet, default_policies
from workers.policies.slos import SloPolicy
from workers.policies.vendor_registry import VendorRegistry
from workers.settings import Mode

POLICY_CHAIN = "policy"
POLICY_CHANGED = names.POLICY_CHANGED

# Kinds a trail written before they existed does not record: such a trail ran under their
# defaults (an empty graph, an empty registry).
_ADDED_LATER = frozenset({PolicyKind.DEPENDENCIES, PolicyKind.VENDORS})

KINDS = (
    PolicyKind.BREAKERS,
    PolicyKind.BUDGETS,
    PolicyKind.SLOS,
    PolicyKind.CLASSIFICATION,
    PolicyKind.AUDIT,
    PolicyKind.DEPENDENCIES,
    PolicyKind.VENDORS,
)


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One `aud.policy.changed` record to seal."""

    kind: PolicyKind
    version: str
    payload: dict[str, Any]


def documents_of(policies: PolicySet) -> dict[PolicyKind, PolicyDocument]:
    return {
        PolicyKind.BREAKERS: policies.breakers.document,
        PolicyKind.BUDGETS: policies.budgets.document,
        PolicyKind.SLOS: policies.slos.document,
        PolicyKind.CLASSIFICATION: policies.classification.document,
        PolicyKind.AUDIT: policies.audit.document,
        PolicyKind.DEPENDENCIES: policies.dependencies.document,
        PolicyKind.VENDORS: policies.vendors.document,
    }


def policy_changes(
    recorded: Mapping[str, Any] | None, policies: PolicySet, mode: Mode
) -> list[PolicyChange]:
    """What to record when `policies` start after the chain's newest payload `recorded`
    (None: an empty chain), in `KINDS` order; nothing when every version is the same."""
    previous = _documents_field(recorded)
    current = documents_of(policies)
    documents = {str(kind): _as_json(document) for kind, document in current.items()}
    changes = []
    for kind in KINDS:
        document = current[kind]
        before = previous.get(str(kind), {})
        if before.get("version") == document.version:
            continue
        payload = {
            "kind": str(kind),
            "name": document.name,
            "version": document.version,
            "previous_version": before.get("version"),
            "changes": spec_changes(before.get("spec") or {}, document.spec),
            "source": document.source,
            "mode": str(mode),
            "documents": documents,
        }
        changes.append(PolicyChange(kind, document.version, payload))
    return changes


def spec_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """`added|removed|changed <path>` per entry: a top-level mapping (budgets, slos,
    event_types, ...) is compared id by id, any other top-level value as a whole."""
    lines = []
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        if _mapping_or_absent(old) and _mapping_or_absent(new):
            old_entries, new_entries = old or {}, new or {}
            entry_lines = [
                line
                for entry in sorted(set(old_entries) | set(new_entries), key=str)
                if (
                    line := _compare(
                        f"{key}.{entry}",
                        old_entries.get(entry),
                        new_entries.get(entry),
                        entry in old_entries,
                    )
                )
                is not None
            ]
            if entry_lines or (key in before) == (key in after):
                lines += entry_lines
                continue
        line = _compare(str(key), old, new, key in before)
        if line is not None:
            lines.append(line)
    return lines


def _mapping_or_absent(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def _compare(path: str, old: Any, new: Any, existed: bool) -> str | None:
    if not existed:
        return f"added {path}"
    if new is None and old is not None:
        return f"removed {path}"
    return None if old == new else f"changed {path}"


@dataclass(frozen=True, slots=True)
class RecordedPolicies:
    policies: PolicySet
    masked: tuple[str, ...]
    """Kinds whose recorded document no longer hashes to its version: values in it were
    masked as personal data before it was written (e.g. a notify address). They are parsed
    as recorded and keep the recorded version; decisions never depend on such values."""


def recorded_policies(payload: Mapping[str, Any], mode: Mode | None = None) -> RecordedPolicies:
    """The policy set an `aud.policy.changed` payload records (its `documents`), parsed by
    the same code as the files (under the recorded mode unless `mode` is given).
    ConfigError when a document is missing or is no policy of its kind."""
    documents = _documents_field(payload)
    run_mode = mode or Mode(payload.get("mode", Mode.DEVELOPMENT))
    parsed: dict[PolicyKind, PolicyDocument] = {}
    masked = []
    for kind in KINDS:
        raw = documents.get(str(kind))
        if raw is None and kind in _ADDED_LATER:
            continue  # a trail recorded before the kind existed ran under its default
        if not isinstance(raw, Mapping):
            raise ConfigError(f"the recorded policies have no {kind} document")
        try:
            parsed[kind] = PolicyDocument.model_validate(raw)
        except ValidationError:
            parsed[kind] = _as_recorded(kind, raw)
            masked.append(str(kind))
    policies = PolicySet(
        BreakerPolicy.from_document(parsed[PolicyKind.BREAKERS], run_mode),
        BudgetPolicy.from_document(parsed[PolicyKind.BUDGETS], run_mode),
        SloPolicy.from_document(parsed[PolicyKind.SLOS], run_mode),
        ClassificationPolicy.from_document(parsed[PolicyKind.CLASSIFICATION], run_mode),
        AuditPolicy.from_document(parsed[PolicyKind.AUDIT], run_mode),
        _recorded_or_default(parsed, PolicyKind.DEPENDENCIES, DependencyPolicy, run_mode),
        _recorded_or_default(parsed, PolicyKind.VENDORS, VendorRegistry, run_mode),
    )
    return RecordedPolicies(policies, tuple(masked))


def _recorded_or_default(
    parsed: Mapping[PolicyKind, PolicyDocument],
    kind: PolicyKind,
    policy: type[DependencyPolicy] | type[VendorRegistry],
    mode: Mode,
) -> Any:
    document = parsed.get(kind)
    if document is None:
        return getattr(default_policies(mode), str(kind))  # the field is named as its kind
    return policy.from_document(document, mode)


def _as_recorded(kind: PolicyKind, raw: Mapping[str, Any]) -> PolicyDocument:
    """A document whose spec was masked: its spec as recorded, under the recorded version."""
    spec, version = raw.get("spec"), raw.get("version")
    if not isinstance(spec, Mapping) or not isinstance(version, str):
        raise ConfigError(f"the recorded {kind} document has no spec or version")
    try:
        document = PolicyDocument.from_spec(
            kind, str(raw.get("name", "recorded")), spec, source=raw.get("source")
        )
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"the recorded {kind} document is unreadable: {exc}") from None
    return document.model_copy(update={"version": version})


def _documents_field(payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
    documents = (payload or {}).get("documents")
    return documents if isinstance(documents, Mapping) else {}


def _as_json(document: PolicyDocument) -> dict[str, Any]:
    return document.model_dump(mode="json", exclude_none=True)
