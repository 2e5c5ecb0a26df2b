"""Audit records (topic `audit`, keyed by chain id) — DESIGN §8.

Records are hash-chained per `chain`: `hash` covers every other field, `prev_hash` links to the
previous record. This module fixes the record shape and the canonical encoding the hash is
computed over; building and verifying chains is the audit-chain kernel's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydantic import Field

from schemas.base import WireModel
from schemas.types import (
    EventTime,
    HexDigest,
    Identifier,
    JsonObject,
    PolicyVersion,
    Severity,
    ShortStr,
)

# prev_hash of the first record of a chain.
GENESIS_HASH: Final = "0" * 64

# The field a record's hash is stored in; excluded from the bytes it is computed over.
HASH_FIELD: Final = "hash"


class AuditSource(WireModel):
    """Where the audited decision came from: a record's coordinates and/or an event id."""

    topic: ShortStr | None = None
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    event_id: ShortStr | None = None


class AuditRecord(WireModel):
    """One governance decision (or, at audit level forensic, one input event)."""

    record_id: Identifier
    chain: Identifier
    """Chain id, also the Kafka key: one ordered, hash-linked sequence per chain."""
    seq: int = Field(ge=0)
    """Position in the chain, starting at 0; gaps mean deleted records."""
    prev_hash: HexDigest
    """`hash` of record seq-1, or GENESIS_HASH for seq 0."""
    hash: HexDigest
    """SHA-256 hex over canonical_bytes(this record), which covers prev_hash."""
    event_type: str = Field(pattern=r"^aud(\.[a-z0-9_]+)+$", max_length=128)
    """Dotted type in the seeds' vocabulary: aud.tool.invocation, aud.breaker.transition,
    aud.budget.exceeded, aud.data.sensitive, aud.policy.changed..."""
    ts: EventTime
    """Event time of the decision (never the wall clock), so replays reproduce it."""
    severity: Severity
    policy_version: PolicyVersion
    source: AuditSource | None = None
    payload: JsonObject = Field(default_factory=dict)
    """Decision details; classified values are masked before they get here."""


# Types orjson would otherwise encode its own way (datetime as "+00:00", enums, dataclasses);
# with these options they are refused instead.
_JSON_MODE_ONLY = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def canonical_bytes(record: AuditRecord | Mapping[str, Any]) -> bytes:
    """The bytes an audit record's hash is computed over.

    orjson with sorted keys (at every depth) and no whitespace, over the record's JSON-mode
    fields minus `hash`, so the encoding is independent of key order and of the placeholder a
    record carries before it is sealed (build it with any valid hash, then
    `model_copy(update={"hash": ...})`).

    A Mapping must hold JSON-mode values, i.e. what `model_dump(mode="json")` returns: a raw
    datetime would encode as "+00:00" here but "Z" on the wire, so it is refused instead of
    silently producing a hash nobody can reproduce from the topic.
    """
    fields = record.model_dump(mode="json") if isinstance(record, AuditRecord) else record
    unsealed = {key: value for key, value in fields.items() if key != HASH_FIELD}
    try:
        return orjson.dumps(unsealed, option=_JSON_MODE_ONLY)
    except orjson.JSONEncodeError as exc:
        raise TypeError(
            f"canonical_bytes takes JSON-mode values (model_dump(mode='json')): {exc}"
        ) from exc
