"""One kernel's place in a worker: its stages, its audit chains, its agent (shell)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.registry import Collector
from pydantic import BaseModel

from topics.catalog import TopicCatalog
from workers.audit.chains import ChainBook
from workers.batching import BatchingApp, BatchTopic
from workers.batching.runner import run_batches
from workers.ingest.stage import IngestResult
from workers.kernels.key_cap import KeyCaps, KeyCounts
from workers.masking.masker import Masker
from workers.policies.policy_set import PolicySet
from workers.shell.publisher import DecisionPublisher
from workers.shell.recovery import PartitionTrail
from workers.shell.snapshots import SnapshotStore
from workers.shell.spec import Core, KernelSpec
from workers.shell.stages import CounterStage, DirectStage, KernelStage, RouterStage


@dataclass(slots=True)
class WiredKernel:
    spec: KernelSpec[Any]
    stage: KernelStage[Any]
    router: RouterStage | None

    async def handle(self, result: IngestResult) -> None:
        """An ingested batch (an ingest sink): decided here, or routed to the counters."""
        if self.router is not None:
            await self.router.handle(result)
        else:
            assert isinstance(self.stage, DirectStage)
            await self.stage.handle(result)

    def take_over(self, trail: PartitionTrail) -> None:
        """The ingest took an input partition over (`shell.ingest.TakesOver`)."""
        if isinstance(self.stage, DirectStage):
            self.stage.take_over(trail)

    def held_core(self, partition: int) -> tuple[str, Core] | None:
        """A direct kernel's core of input partition `partition`, for its snapshot."""
        if not isinstance(self.stage, DirectStage):
            return None
        core = self.stage.cores.get(partition)
        return None if core is None else (self.spec.kernel, core)

    def forget(self, topic: str, partition: int) -> None:
        """`topic[partition]` was revoked from this worker."""
        self.stage.forget(topic, partition)
        if self.router is not None:
            self.router.forget(topic, partition)

    def states(self) -> list[BaseModel]:
        return self.stage.states()

    def alert_counts(self) -> Counter[tuple[str, str, str]]:
        """Alerts this kernel published, by (kind, severity, status)."""
        return self.stage.publisher.alerts

    def key_counts(self) -> KeyCounts:
        return self.stage.key_counts()

    def collector(self) -> Collector | None:
        if self.spec.collector is None:
            return None
        router = self.router
        stats = self.stage.stats((lambda: router.routed) if router is not None else lambda: 0)
        return self.spec.collector(stats)


def wire_kernel(
    app: BatchingApp,
    catalog: TopicCatalog,
    spec: KernelSpec[Any],
    policies: PolicySet,
    *,
    client_options: Mapping[str, Any],
    caps: KeyCaps,
    masker: Masker,
    queue_size: int,
    snapshots: SnapshotStore | None = None,
) -> WiredKernel:
    """`spec`'s stages on `app`; a routed kernel's counter agent is registered here.
    `snapshots`: where its counters restore from and snapshot to (direct kernels' cores are
    snapshotted with their input partition, by the ingest)."""
    prefix = spec.chain_prefix
    chains = ChainBook.on_audit_topic(
        client_options, catalog, lambda partition: f"{prefix}-p{partition}", masker, policies.audit
    )
    publisher = DecisionPublisher(app, catalog, spec, chains)
    if spec.direct is not None:
        stage = DirectStage(spec, policies, catalog, caps, publisher)
        return WiredKernel(spec, stage, None)
    counter = CounterStage(spec, policies, catalog, caps, publisher, client_options, snapshots)
    _register_counter(app, counter, queue_size)
    return WiredKernel(spec, counter, RouterStage(app, catalog, spec, policies))


def _register_counter(app: BatchingApp, counter: CounterStage[Any], queue_size: int) -> None:
    """One agent (concurrency 1: batches of a partition in order) over the routed topic."""
    batches_topic = BatchTopic(app, topics=[counter.partitions_topic], maxsize=queue_size)

    async def count(batches: Any) -> None:
        await run_batches(app, batches, counter.handle)

    app.agent(batches_topic, name=f"guardstream.{counter.spec.chain_prefix}", concurrency=1)(count)
