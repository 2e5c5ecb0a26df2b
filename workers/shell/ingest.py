"""The ingest agent's work per batch (shell): skip what the forensic trail already holds,
validate (`IngestStage`, pure), dead-letter the refused records, and hand the accepted events
to the sinks (input audit, then the kernels) in order."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import faust

from schemas.codec import encode
from topics.catalog import TopicCatalog, TopicName
from workers.audit.inputs import input_chain_id
from workers.batching import RawBatch
from workers.batching.outputs import BatchOutputs
from workers.ingest.stage import IngestResult, IngestStage
from workers.ingest.warmup import ensure_memory
from workers.shell.recovery import PartitionTrail, read_partition_trail
from workers.shell.snapshots import SnapshotStore
from workers.shell.spec import Core

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where an ingested batch's accepted events go next (input audit, kernels)."""

    async def handle(self, result: IngestResult) -> None: ...


class TakesOver(Protocol):
    """A sink that rebuilds what it holds of an input partition from the forensic trail (and
    the partition's snapshot), and has a core of it to snapshot."""

    def take_over(self, trail: PartitionTrail) -> None: ...

    def held_core(self, partition: int) -> tuple[str, Core] | None: ...


class IngestBatches:
    def __init__(
        self,
        app: faust.App,
        catalog: TopicCatalog,
        stage: IngestStage,
        sinks: Sequence[EventSink],
        client_options: Mapping[str, Any],
        *,
        skip_recorded: bool,
        taking_over: Sequence[TakesOver] = (),
        snapshots: SnapshotStore | None = None,
    ) -> None:
        """`skip_recorded`: the forensic trail is the truth (exactly-once, forensic level), so
        records it holds were fully processed before a crash and are skipped, and
        `taking_over` rebuild their state of a partition from it when it arrives, starting
        from the partition's latest snapshot in `snapshots` (which it takes periodically)."""
        self._stage = stage
        self._sinks = sinks
        self._outputs = BatchOutputs(app)
        self._dead_letter = catalog.name(TopicName.DEAD_LETTER)
        self._audit = catalog.name(TopicName.AUDIT)
        self._audit_partitions = catalog.spec(TopicName.AUDIT).partitions
        self._client_options = client_options
        self._skip_recorded = skip_recorded
        self._taking_over = taking_over
        self._snapshots = snapshots if skip_recorded else None
        # partition -> input topic -> the highest offset processed: what the trail (and
        # snapshot) recorded at the takeover, then each batch's last.
        self._processed: dict[int, dict[str, int]] = {}

    async def handle(self, batch: RawBatch) -> None:
        if not self._skip_recorded:
            await self._process(batch)
            return
        fresh = await self._unrecorded(batch)
        if fresh is not None:  # None: processed before a crash, outputs committed
            await self._process(fresh)
            processed = self._processed.get(fresh.partition)
            if processed is not None:  # None: revoked while the batch ran
                processed[fresh.topic] = fresh.records[-1].offset
                await self._maybe_snapshot(fresh, processed)

    def forget(self, topic: str, partition: int) -> None:
        """`topic[partition]` was revoked: what this worker knew of it goes stale."""
        self._stage.forget_partition(topic, partition)
        self._processed.pop(partition, None)
        if self._snapshots is not None:
            self._snapshots.forget(input_chain_id(partition))

    async def _process(self, batch: RawBatch) -> None:
        stage = self._stage
        recalled = await ensure_memory(stage, self._client_options, batch)
        if recalled is not None:
            log.info("dedup memory of %s[%d]: %d ids", batch.topic, batch.partition, recalled)
        result = stage.process(batch)
        source = (batch.topic, batch.partition)
        for rejected in result.rejected:
            await self._outputs.send(
                source, self._dead_letter, rejected.record.key, encode(rejected.dead_letter)
            )
        for sink in self._sinks:
            await sink.handle(result)

    async def _unrecorded(self, batch: RawBatch) -> RawBatch | None:
        """The part of `batch` the forensic trail does not hold yet (None: all of it)."""
        offsets = self._processed.get(batch.partition)
        if offsets is None:
            offsets = self._processed[batch.partition] = await self._take_over(batch.partition)
        done = offsets.get(batch.topic, -1)
        if batch.records[-1].offset <= done:
            return None
        if batch.records[0].offset > done:
            return batch
        log.info(
            "%s[%d]: offsets up to %d were processed before", batch.topic, batch.partition, done
        )
        fresh = [record for record in batch.records if record.offset > done]
        return RawBatch(batch.topic, batch.partition, fresh)

    async def _take_over(self, partition: int) -> dict[str, int]:
        """Read the partition's trail once, at its first batch, before anything is sent for
        it, and hand it to the sinks that rebuild state from it. Returns what it records."""
        snapshot = None
        if self._snapshots is not None:
            snapshot = await self._snapshots.read(input_chain_id(partition))
        trail = await read_partition_trail(
            self._client_options,
            audit_topic=self._audit,
            audit_partitions=self._audit_partitions,
            partition=partition,
            snapshot=snapshot,
        )
        for sink in self._taking_over:
            sink.take_over(trail)
        return dict(trail.recorded)

    async def _maybe_snapshot(self, batch: RawBatch, processed: Mapping[str, int]) -> None:
        """After a batch, a snapshot of its partition's direct cores when one is due: what
        they hold, the offsets `processed`, and where the trail after it begins."""
        snapshots, partition = self._snapshots, batch.partition
        if snapshots is None:
            return
        name = input_chain_id(partition)
        if not snapshots.due(name, len(batch.records)):
            return
        cores = dict(held for sink in self._taking_over if (held := sink.held_core(partition)))
        # Every input record sent after this point lands at or past this offset; the ones of
        # the batch just processed may too, and are told apart by their source offsets.
        audit_from = await snapshots.end_of_chain_partition(name)
        position = {"offsets": dict(processed), "audit_from": audit_from}
        source = (batch.topic, partition)
        await snapshots.write(self._outputs, source, name, cores, position)
