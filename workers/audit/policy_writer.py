"""Write a starting worker's policy changes to the `policy` chain (shell: Kafka I/O).

Every worker of a group starts with its policies and may find them new, but the chain must
have one writer at a time or it forks. The writer is a transactional producer with one id
per app (`{app id}-policy`): starting it fences any other worker's writer and aborts what
that one left open, so the head read afterwards (read committed) is final; a writer fenced
while it wrote commits nothing, and the worker that fenced it records the same change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced

from schemas.codec import encode
from schemas.types import Severity
from workers.audit.chain import AuditChain
from workers.audit.policy_trail import POLICY_CHAIN, POLICY_CHANGED, policy_changes
from workers.audit.recover import last_record
from workers.audit.sealing import seal_masked
from workers.masking.masker import Masker
from workers.policies.audit_event_types import AuditPolicy
from workers.policies.policy_set import PolicySet
from workers.settings import Mode

log = logging.getLogger(__name__)


async def record_policy_changes(
    client_options: Mapping[str, Any],
    *,
    app_id: str,
    audit_topic: str,
    audit_partitions: int,
    policies: PolicySet,
    mode: Mode,
    masker: Masker,
    audit_policy: AuditPolicy,
) -> int:
    """Seal and commit an `aud.policy.changed` record per policy kind whose version differs
    from the chain's newest record. Returns how many records were written (0: unchanged, or
    fenced by another worker recording the same)."""
    producer = AIOKafkaProducer(
        **client_options, transactional_id=f"{app_id}-policy", enable_idempotence=True
    )
    await producer.start()
    try:
        last = await last_record(client_options, audit_topic, audit_partitions, POLICY_CHAIN)
        changes = policy_changes(last.payload if last is not None else None, policies, mode)
        if not changes:
            return 0
        chain = AuditChain.after(last) if last is not None else AuditChain(POLICY_CHAIN)
        now_ms = int(time.time() * 1000)
        records = [
            record
            for change in changes
            for record in seal_masked(
                chain,
                masker,
                POLICY_CHANGED,
                ts_ms=now_ms,
                severity=Severity.INFO,
                policy_version=change.version,
                payload=change.payload,
                policy=audit_policy,
            )
        ]
        async with producer.transaction():
            for record in records:
                await producer.send(audit_topic, encode(record), key=POLICY_CHAIN.encode())
        log.info(
            "policy changes recorded: %s",
            ", ".join(f"{c.kind} {c.version[:12]}" for c in changes),
        )
        return len(records)
    except ProducerFenced:
        log.info("another worker is recording the policy changes")
        return 0
    finally:
        await producer.stop()
