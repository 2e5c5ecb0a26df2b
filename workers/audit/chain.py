"""Sealing records into a hash chain. Pure: the caller publishes what `seal` returns.

Each record carries its chain's next `seq` and the `hash` of the record before it
(`GENESIS_HASH` first); `hash` is SHA-256 over `schemas.audit.canonical_bytes`, so any edit,
deletion, insertion or reordering breaks the chain where it happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from schemas.audit import GENESIS_HASH, AuditRecord, AuditSource, canonical_bytes
from schemas.types import Severity, from_epoch_ms


class Sealing(TypedDict):
    """What a record says besides its event type: the keyword arguments of `AuditChain.seal`,
    as the sealers that pass them on take them (`sealing.seal_masked`, `chains.ChainBook.seal`)."""

    ts_ms: int
    severity: Severity
    policy_version: str
    payload: Mapping[str, Any]
    source: NotRequired[AuditSource | None]


class AuditChain:
    """The head of one chain: where the next record goes."""

    def __init__(self, chain_id: str, *, seq: int = 0, prev_hash: str = GENESIS_HASH) -> None:
        self.chain_id = chain_id
        self.seq = seq
        self.prev_hash = prev_hash

    @classmethod
    def after(cls, last: AuditRecord) -> AuditChain:
        """Continue a chain whose last published record is `last` (after a restart)."""
        return cls(last.chain, seq=last.seq + 1, prev_hash=last.hash)

    def seal(
        self,
        event_type: str,
        *,
        ts_ms: int,
        severity: Severity,
        policy_version: str,
        payload: Mapping[str, Any],
        source: AuditSource | None = None,
    ) -> AuditRecord:
        """The next record of the chain, hashed; the chain head moves past it. Its keywords
        spelled out, not as `**Sealing`: it is called for every record, and collecting them
        into a dict would cost ~1-2 % of a seal."""
        unsealed = AuditRecord(
            record_id=f"{self.chain_id}:{self.seq}",
            chain=self.chain_id,
            seq=self.seq,
            prev_hash=self.prev_hash,
            hash=GENESIS_HASH,  # placeholder: canonical_bytes excludes the hash field
            event_type=event_type,
            ts=from_epoch_ms(ts_ms),
            severity=severity,
            policy_version=policy_version,
            source=source,
            payload=dict(payload),
        )
        digest = hashlib.sha256(canonical_bytes(unsealed)).hexdigest()
        record = unsealed.model_copy(update={"hash": digest})
        self.seq += 1
        self.prev_hash = digest
        return record


def record_hash_ok(record: AuditRecord) -> bool:
    """Whether `record.hash` matches its content."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest() == record.hash
