"""The audit chains one agent writes, one per partition it owns (shell: Kafka I/O).

A chain's head is found in the audit topic the first time the agent writes to it after
getting its partition (`recover.last_record`), so a worker that takes over a partition
continues the chain where the last owner left it instead of forking it at seq 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Unpack

from schemas.audit import AuditRecord
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chain import AuditChain, Sealing
from workers.audit.recover import last_record
from workers.audit.sealing import seal_masked
from workers.masking.masker import Masker, default_masker
from workers.policies.audit_event_types import AuditPolicy, default_audit_policy

log = logging.getLogger(__name__)


class ChainBook:
    @classmethod
    def on_audit_topic(
        cls,
        client_options: Mapping[str, Any],
        catalog: TopicCatalog,
        chain_id: Callable[[int], str],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
    ) -> ChainBook:
        """The chains `chain_id(partition)` on the catalog's audit topic."""
        audit = TopicName.AUDIT
        return cls(
            client_options,
            catalog.name(audit),
            catalog.spec(audit).partitions,
            chain_id,
            masker,
            audit_policy,
        )

    def __init__(
        self,
        client_options: Mapping[str, Any],
        audit_topic: str,
        audit_partitions: int,
        chain_id: Callable[[int], str],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
    ) -> None:
        """`masker`: applied to every payload before it is sealed (default: the seed's
        classification patterns); `audit_policy`: every record's severity and required
        fields (default: the seed's event types and guardstream's own)."""
        self._client_options = client_options
        self._audit_topic = audit_topic
        self._audit_partitions = audit_partitions
        self._chain_id = chain_id
        self._chains: dict[int, AuditChain] = {}
        self._published_through: dict[int, int] = {}
        self.masker = masker or default_masker()
        self.audit_policy = audit_policy or default_audit_policy()

    async def chain(self, partition: int) -> AuditChain:
        """The chain of `partition`, continued from its last record in the audit topic."""
        chain = self._chains.get(partition)
        if chain is None:
            name = self._chain_id(partition)
            last = await last_record(
                self._client_options, self._audit_topic, self._audit_partitions, name
            )
            chain = AuditChain.after(last) if last is not None else AuditChain(name)
            log.info(
                "audit chain %s continues at seq %d (head offset %s)",
                name,
                chain.seq,
                None if last is None or last.source is None else last.source.offset,
            )
            self._chains[partition] = chain
            source = last.source if last is not None else None
            offset = source.offset if source is not None else None
            self._published_through[partition] = offset if offset is not None else -1
        return chain

    async def published_through(self, partition: int) -> int:
        """The highest source offset named by `partition`'s chain when this worker took the
        partition (-1: none; meaningful for a chain fed by one source topic). A batch's
        records commit together with all its other outputs (`batching.gate`), so a source
        record at or below it was fully published by the last owner: consumed again (its
        offset was not committed yet), it must not be published twice."""
        await self.chain(partition)
        return self._published_through[partition]

    async def seal(
        self,
        partition: int,
        event_type: str,
        *,
        user: str | None = None,
        **fields: Unpack[Sealing],
    ) -> list[AuditRecord]:
        """The next record(s) of `partition`'s chain, masked and checked against the audit
        policy (`sealing.seal_masked`)."""
        return seal_masked(
            await self.chain(partition),
            self.masker,
            event_type,
            user=user,
            policy=self.audit_policy,
            **fields,
        )

    def forget(self, partition: int) -> None:
        """The partition went elsewhere: its chain head goes stale here."""
        self._chains.pop(partition, None)
        self._published_through.pop(partition, None)
