"""The Faust shell of any decision kernel (issue 12): one partition's core at a time, fed,
restored, published and forgotten the same way for every `KernelSpec`.

- `DirectStage` (an ingest sink): a direct kernel's core per input partition decides the
  batch's events; decisions go out in the input batch's transaction.
- `RouterStage` (an ingest sink) and `CounterStage` (an agent on the routed topic): a routed
  kernel's input batches become keyed records and watermarks on its routed topic; a core per
  routed partition counts them and its decisions go out in the routed batch's transaction.

A core is created when its partition's first batch arrives and rebuilt before it decides
anything (`workers.shell.recovery`): a counter from its routed partition, a direct core from the
forensic trail (exactly-once with the forensic audit level only, where the trail and the
committed offsets cannot disagree). Revoking a partition drops its core and chain head.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import faust

from schemas.codec import encode
from topics.catalog import TopicCatalog
from workers.batching import RawBatch
from workers.decisions import DecisionType
from workers.ingest.stage import IngestResult
from workers.kernels.key_cap import KeyCaps
from workers.policies.policy_set import PolicySet
from workers.routed.sender import RoutedSender
from workers.shell.publisher import DecisionPublisher
from workers.shell.recovery import PartitionTrail, restore_counting, restore_direct
from workers.shell.snapshots import SnapshotStore
from workers.shell.spec import Core, DirectCore, KernelCores, KernelSpec, KernelStats, RoutedCore

C = TypeVar("C", bound=Core)
D = TypeVar("D", bound=DirectCore)
R = TypeVar("R", bound=RoutedCore)


class KernelStage(KernelCores[C]):
    """One kernel's cores on this worker, one per partition of its state topic it holds."""

    def __init__(
        self,
        spec: KernelSpec[C],
        policies: PolicySet,
        catalog: TopicCatalog,
        caps: KeyCaps,
        publisher: DecisionPublisher,
    ) -> None:
        super().__init__(spec, policies, catalog, caps)
        self.publisher = publisher

    def forget(self, topic: str, partition: int) -> None:
        """`topic[partition]` went to another worker: a core it held and its chain head go
        stale here."""
        if topic == self.partitions_topic:
            self.cores.pop(partition, None)
            self.publisher.chains.forget(partition)

    def stats(self, routed: Callable[[], int] = lambda: 0) -> KernelStats:
        """`routed`: the measures its router sent (a routed kernel's)."""
        published = self.publisher.published
        return KernelStats(
            cores=lambda: list(self.cores.values()),
            routed=routed,
            decisions=lambda: sum(published.values()),
            transitions=lambda: published[DecisionType.TRANSITION],
            alerts=lambda: published[DecisionType.ALERT],
        )


class DirectStage(KernelStage[D]):
    """A direct kernel's cores, one per input partition. A core starts empty, or, where the
    forensic trail is the truth, is rebuilt from it when the ingest takes the partition over
    (`take_over`, before the partition's first batch sends anything)."""

    def take_over(self, trail: PartitionTrail) -> None:
        """Rebuild the partition's core: the snapshot's, else a new one, and the trail since."""
        core: D | None = trail.cores.get(self.spec.kernel)
        if core is None:
            core = self.build(trail.partition)
        else:
            self.cores[trail.partition] = core
        restore_direct(core, trail)

    async def handle(self, result: IngestResult) -> None:
        if not result.accepted or result.topic not in self.inputs:
            return
        partition = result.partition
        core = self.cores.get(partition)
        if core is None:  # no trail to rebuild it from (`take_over` builds it otherwise)
            core = self.build(partition)
        decide = core.decider(result.topic)
        if decide is None:
            return
        source = (result.topic, partition)
        publish = self.publisher.publish
        for item in result.accepted:
            decisions = decide(item.event)
            if decisions:
                record = item.record
                cause = (record.topic, record.partition, record.offset)
                for decision in decisions:
                    await publish(decision, core, source, partition, cause)
        states = core.take_state_records()
        if states:
            await self.publisher.publish_states(states, source)


class CounterStage(KernelStage[R]):
    def __init__(
        self,
        spec: KernelSpec[R],
        policies: PolicySet,
        catalog: TopicCatalog,
        caps: KeyCaps,
        publisher: DecisionPublisher,
        client_options: Mapping[str, Any],
        snapshots: SnapshotStore | None = None,
    ) -> None:
        """`snapshots`: restore from the latest snapshot + the tail, and take them."""
        super().__init__(spec, policies, catalog, caps, publisher)
        self._client_options = client_options
        self._snapshots = snapshots

    @property
    def unreadable(self) -> int:
        return sum(core.unreadable for core in self.cores.values())

    async def handle(self, batch: RawBatch) -> None:
        partition = batch.partition
        core = self.cores.get(partition)
        if core is None:
            core = await self._open(partition, batch.first_offset)
        source = (batch.topic, partition)
        chains, publish = self.publisher.chains, self.publisher.publish
        published_through: float = -math.inf  # asked of the chain at the first decision
        for record in batch.records:
            decisions = core.apply(record.value or b"")
            if not decisions:
                continue
            if published_through == -math.inf:
                published_through = await chains.published_through(partition)
            if record.offset <= published_through:
                continue  # its outputs were committed by the partition's last owner
            cause = (batch.topic, partition, record.offset)
            for decision in decisions:
                await publish(decision, core, source, partition, cause)
        states = core.take_state_records()
        if states:
            await self.publisher.publish_states(states, source)
        snapshots, name = self._snapshots, self._snapshot_name(partition)
        if snapshots is not None and snapshots.due(name, len(batch.records), routed=True):
            next_offset = batch.records[-1].offset + 1
            position = {"next_offset": next_offset}
            await snapshots.write(self.publisher.outputs, source, name, core, position)

    def forget(self, topic: str, partition: int) -> None:
        super().forget(topic, partition)
        if self._snapshots is not None and topic == self.partitions_topic:
            self._snapshots.forget(self._snapshot_name(partition))

    def _snapshot_name(self, partition: int) -> str:
        return f"{self.spec.chain_prefix}-p{partition}"

    async def _open(self, partition: int, first_offset: int) -> R:
        snapshot = None
        if self._snapshots is not None:
            snapshot = await self._snapshots.read(self._snapshot_name(partition))
        start = 0 if snapshot is None else int(snapshot.position.get("next_offset", 0))
        if snapshot is not None and start <= first_offset:
            core: R = snapshot.state
            self.cores[partition] = core
        else:
            core, start = self.build(partition), 0
        await restore_counting(
            self._client_options,
            core,
            self.partitions_topic,
            partition,
            first_offset,
            start=start,
        )
        return core


class RouterStage:
    """Routes a routed kernel's input batches to its routed topic (an ingest sink)."""

    def __init__(
        self, app: faust.App, catalog: TopicCatalog, spec: KernelSpec[Any], policies: PolicySet
    ) -> None:
        assert spec.router is not None
        assert spec.routed_topic is not None
        self._route = spec.router(policies)
        self._inputs = {catalog.name(topic) for topic in spec.inputs}
        routed = spec.routed_topic
        self._sender = RoutedSender(app, catalog.name(routed), catalog.spec(routed).partitions)
        self.routed = 0

    def forget(self, topic: str, partition: int) -> None:
        """The input partition went away: its watermark is sent again by its next owner."""
        self._sender.forget_source(topic, partition)

    async def handle(self, result: IngestResult) -> None:
        if result.topic not in self._inputs or not result.accepted:
            return
        source = (result.topic, result.partition)
        routed = self._route(
            [item.event for item in result.accepted],
            source_topic=result.topic,
            source_partition=result.partition,
        )
        send = self._sender.send
        for record in routed.records:
            await send(source, record.key.encode(), encode(record))
        self.routed += routed.measures
        await self._sender.watermark(result.topic, result.partition, routed.reached_ms)
