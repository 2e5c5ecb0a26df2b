"""Policy documents (topic `policies`, keyed by kind) — DESIGN §5.

The envelope every policy travels in. Its `version` is the content hash of `spec`, which every
decision is stamped with. Typed per-kind spec models live with their kernels' policy modules;
here the spec is plain JSON so the envelope does not change when a kind gains a field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

import orjson
from pydantic import model_validator

from schemas.base import WireModel
from schemas.types import EventTime, Identifier, JsonObject, PolicyVersion, Text


class PolicyKind(StrEnum):
    BREAKERS = "breakers"
    BUDGETS = "budgets"
    SLOS = "slos"
    AUDIT = "audit"
    CLASSIFICATION = "classification"
    RUNTIME = "runtime"
    DEPENDENCIES = "dependencies"
    VENDORS = "vendors"


def policy_version(spec: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical encoding of `spec` (orjson, keys sorted at every depth).

    Key order, YAML formatting and comments do not change the version; any value does. Only the
    spec is hashed (not kind, name or source), so moving a file does not look like a change.
    """
    return hashlib.sha256(orjson.dumps(dict(spec), option=orjson.OPT_SORT_KEYS)).hexdigest()


class PolicyDocument(WireModel):
    """A validated policy of one kind, as published by `guardstream policy apply`."""

    kind: PolicyKind
    name: Identifier
    """Human name of the policy set, e.g. the file stem ("circuit_breakers")."""
    version: PolicyVersion
    """policy_version(spec); checked on every decode, so a corrupted spec is rejected."""
    spec: JsonObject
    """The kind-specific policy as plain JSON (validated by the kind's own model)."""
    source: Text | None = None
    """File the policy was loaded from, for error messages and audit records."""
    applied_at: EventTime | None = None
    """Event time at which a worker applied it (set by the worker, not by the publisher)."""

    @classmethod
    def from_spec(
        cls,
        kind: PolicyKind | str,
        name: str,
        spec: Mapping[str, Any],
        *,
        source: str | None = None,
        applied_at: datetime | None = None,
    ) -> Self:
        """Build a document, computing its version from `spec`."""
        return cls(
            kind=PolicyKind(kind),
            name=name,
            version=policy_version(spec),
            spec=dict(spec),
            source=source,
            applied_at=applied_at,
        )

    @model_validator(mode="after")
    def _version_matches_spec(self) -> Self:
        # Workers never apply an invalid policy (DESIGN §5): a spec that does not hash to its
        # version was edited or corrupted after it was validated and published.
        actual = policy_version(self.spec)
        if actual != self.version:
            raise ValueError(
                f"version: {self.version[:12]}... does not match the spec's hash {actual[:12]}..."
            )
        return self
