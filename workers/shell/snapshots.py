"""Periodic snapshots of the cores in the compacted `snapshots` topic (shell: Kafka I/O).

Restore without snapshots replays a partition's whole history: a counter's routed partition
(kept 7 days, so a monthly budget restarted after day 7 came back under-counted) and the
forensic `input-p<N>` chain for the breakers (restore time grew with the trail). With them,
restore = the latest snapshot + what came after it, exact for any budget period.

- *What and where.* A snapshot is one partition's cores (`shell.snapshot`) and its position:
  for a counter, the next offset of its routed partition; for an input partition, the highest
  offset processed per input topic and where its trail's tail starts in the audit partition.
  Its key is the partition's name (`budgets-p2`, `input-p1`). It is written as chunks of at
  most `CHUNK_BYTES` (keys `<name>#<i>`, so compaction keeps the latest of each) and then a
  header naming them, all to the partition the name hashes to.
- *When.* Every `GUARDSTREAM_SNAPSHOT_EVERY` input records (an input partition) or
  `GUARDSTREAM_SNAPSHOT_EVERY_ROUTED` routed records (a counter's partition: each sums a key's
  second of one input batch, ~2 ms of CPU to restore, `bench.restore`) a partition
  processed, after a batch, in that batch's transaction: a snapshot commits with the outputs
  and offsets it matches, or not at all.
- *Read.* At a takeover, before the worker sends anything for the partition (so that the
  settled read never waits on its own transaction, `topics.settled`). A snapshot taken under
  other policies, in another format, or unreadable, is ignored: the partition is rebuilt from
  the beginning as before.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition

from topics.catalog import TopicCatalog, TopicName
from topics.keys import key_partition
from topics.settled import high_watermark, partition_reader, records_between, settled_end
from workers.batching.outputs import BatchOutputs
from workers.kernels.key_cap import KeyCaps
from workers.policies.policy_set import PolicySet
from workers.settings import ProcessingGuarantee, Settings
from workers.shell.snapshot import SnapshotCodec, SnapshotError

log = logging.getLogger(__name__)

FORMAT = 1
CHUNK_BYTES = 512 * 1024
"""Under Kafka's default 1 MiB record limit, with room for the key and headers."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    position: dict[str, Any]
    state: Any
    """What was dumped: a core, or the direct kernels' cores of an input partition by name."""


def fit_of(policies: PolicySet, caps: KeyCaps) -> str:
    """What a snapshot must have been taken under to be loaded: the same policies (the cores
    reference them) and key caps (the cores' maps carry their share)."""
    parts = [policies.breakers.version, policies.budgets.version, policies.slos.version]
    return hashlib.sha256(orjson.dumps([*parts, repr(caps)])).hexdigest()


class SnapshotStore:
    """Writes and reads one worker's snapshots, against the policies it runs."""

    @classmethod
    def for_worker(
        cls, settings: Settings, catalog: TopicCatalog, policies: PolicySet
    ) -> SnapshotStore | None:
        """The worker's store: with exactly-once processing only, where a snapshot commits
        with the offsets it matches (at least once, restore stays a replay from the start)."""
        if settings.effective_guarantee is not ProcessingGuarantee.EXACTLY_ONCE:
            return None
        fit = fit_of(policies, settings.key_caps)
        codec = SnapshotCodec(policies)
        options = settings.kafka_client_options()
        every = (settings.snapshot_every, settings.snapshot_every_routed)
        return cls(options, catalog, codec, fit, every)

    def __init__(
        self,
        client_options: Mapping[str, Any],
        catalog: TopicCatalog,
        codec: SnapshotCodec,
        policy_version: str,
        every: tuple[int, int],
    ) -> None:
        """`every`: records between two snapshots of an input partition, and of a routed
        one (0: never written, still read)."""
        self._client_options = client_options
        self._topic = catalog.name(TopicName.SNAPSHOTS)
        self._partitions = catalog.spec(TopicName.SNAPSHOTS).partitions
        self._audit_topic = catalog.name(TopicName.AUDIT)
        self._audit_partitions = catalog.spec(TopicName.AUDIT).partitions
        self._codec = codec
        self._policy_version = policy_version
        self.every_input, self.every_routed = every
        self._since: dict[str, int] = {}
        self.written = 0

    def due(self, name: str, records: int, *, routed: bool = False) -> bool:
        """Count `records` more processed for `name` (a routed partition's, `routed`);
        whether a snapshot is due now."""
        every = self.every_routed if routed else self.every_input
        if every <= 0:
            return False
        since = self._since.get(name, 0) + records
        self._since[name] = since
        return since >= every

    def forget(self, name: str) -> None:
        self._since.pop(name, None)

    async def write(
        self,
        outputs: BatchOutputs,
        source: tuple[str, int],
        name: str,
        state: Any,
        position: Mapping[str, Any],
    ) -> None:
        """Send the snapshot in the transaction of the batch of `source` just processed."""
        body = self._codec.dump(state)
        digest = hashlib.sha256(body).hexdigest()[:32]
        chunks = [body[start : start + CHUNK_BYTES] for start in range(0, len(body), CHUNK_BYTES)]
        partition = self._partition(name)
        for index, chunk in enumerate(chunks):
            key = f"{name}#{index}".encode()
            await outputs.send(source, self._topic, key, digest.encode() + chunk, partition)
        header = {
            "format": FORMAT,
            "name": name,
            "id": digest,
            "chunks": len(chunks),
            "bytes": len(body),
            "policy_version": self._policy_version,
            "position": dict(position),
        }
        await outputs.send(source, self._topic, name.encode(), orjson.dumps(header), partition)
        self._since[name] = 0
        self.written += 1
        log.info(
            "snapshot %s: %d bytes in %d chunk(s) at %s", name, len(body), len(chunks), position
        )

    async def read(self, name: str) -> Snapshot | None:
        """The latest usable snapshot of `name`, or None (none, or one to ignore: logged)."""
        header, chunks = await self._latest(name)
        if header is None:
            return None
        if header.get("format") != FORMAT or header.get("policy_version") != self._policy_version:
            log.info("snapshot %s was taken under other policies: rebuilding from the start", name)
            return None
        digest = str(header.get("id", ""))
        parts = [chunks.get(index) for index in range(int(header.get("chunks", 0)))]
        if any(part is None or not part.startswith(digest.encode()) for part in parts):
            log.warning("snapshot %s is incomplete: rebuilding from the start", name)
            return None
        body = b"".join(part[len(digest) :] for part in parts if part is not None)
        try:
            state = self._codec.load(body)
        except SnapshotError as exc:
            log.warning("snapshot %s ignored: %s", name, exc)
            return None
        position = header.get("position")
        return Snapshot(name, position if isinstance(position, dict) else {}, state)

    async def _latest(self, name: str) -> tuple[dict[str, Any] | None, dict[int, bytes]]:
        """The newest committed header of `name` and chunk of each index."""
        key = name.encode()
        prefix = key + b"#"
        tp = TopicPartition(self._topic, self._partition(name))
        header: dict[str, Any] | None = None
        chunks: dict[int, bytes] = {}
        async with partition_reader(self._client_options, tp) as consumer:
            beginning = (await consumer.beginning_offsets([tp]))[tp]
            end = await settled_end(self._client_options, consumer, tp, key)
            async for record in records_between(consumer, tp, beginning, end):
                if record.value is None:
                    continue
                if record.key == key:
                    header = orjson.loads(record.value)
                elif record.key is not None and record.key.startswith(prefix):
                    chunks[int(record.key[len(prefix) :])] = record.value
        return header, chunks

    async def end_of_chain_partition(self, chain: str) -> int:
        """The end offset, open transactions included, of the audit partition `chain`'s key
        hashes to: every record appended after this call lands at or past it."""
        partition = key_partition(chain.encode(), self._audit_partitions)
        tp = TopicPartition(self._audit_topic, partition)
        return await high_watermark(self._client_options, tp)

    def _partition(self, name: str) -> int:
        return key_partition(name.encode(), self._partitions)
