"""The worker's pipeline without Kafka: what its kernels decide for a sequence of ingested
batches, using the specs and cores the worker's shell runs (DESIGN §8: "all replay paths use
the kernels the agents use"). Every replay -- a file, the input topics, the audit trail --
goes through `PipelineReplay`, so live and replay share one decision semantics.

`PipelineReplay.batch(topic, partition, events)` is one ingested batch of one input
partition, visiting the kernels in order (`workers.kernel_set.KERNELS`):

- a direct kernel (breakers): the core of that partition decides each event its topic's
  decider takes, as `shell.stages.DirectStage` does;
- a routed kernel (budgets, SLOs): the batch routed and summed per key and second (the spec's
  router) into the core of the routed partition its key hashes to (Kafka's default
  partitioner, as the agents' producer sends it), then the input partition's watermark to
  every routed partition (only forward), as `RouterStage` and `CounterStage` do -- the
  records handed over decoded, without the wire round trip. Each key's items are released by
  the same watermarks in the same event-time order whichever partition holds it; what a
  partition holds matters once its core reaches its share of the worker's key cap
  (`KeyCaps.share`), as it does live.

`PipelineReplay.for_file` is `replay --input`: the file is one ordered stream (`stream`: batches
of events of any topic in file order; each core holds the worker's whole cap). A direct kernel
decides each event as its topic's decider takes it; a routed kernel routes the whole batch
from one source, the file, whose watermark is the time the file reached: a budget or SLO
counts a second once the file has passed it, with the live worker's per-second semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from aiokafka.partitioner import DefaultPartitioner

from schemas.stream import StreamEvent
from schemas.watermark import SourceWatermark
from topics.catalog import TopicCatalog
from workers.decisions import Decision
from workers.kernel_set import KERNELS
from workers.kernels.key_cap import CappedMap, KeyCaps
from workers.policies.policy_set import PolicySet
from workers.shell.spec import FILE_SOURCE, Core, DirectCore, KernelCores, KernelSpec, RoutedCore

FILE_CATALOG = TopicCatalog(input_partitions=1)
"""A file's topics: one partition each (one stream)."""


class PipelineReplay:
    def __init__(
        self,
        policies: PolicySet,
        catalog: TopicCatalog,
        caps: KeyCaps | None = None,
        kernels: Sequence[KernelSpec[Any]] = KERNELS,
        *,
        one_stream: bool = False,
    ) -> None:
        """`caps`: the worker's key caps (`Settings.key_caps`), shared out per partition;
        `one_stream`: a file's pipeline (`for_file`)."""
        caps = caps or KeyCaps()
        self.policies = policies
        self.catalog = catalog
        self.kernels: list[_Kernel[Any]] = [
            (_Direct if spec.direct is not None else _Routed)(
                spec, policies, catalog, caps, one_stream=one_stream
            )
            for spec in kernels
            if spec.enabled(policies)
        ]

    @classmethod
    def for_file(
        cls,
        policies: PolicySet,
        caps: KeyCaps | None = None,
        kernels: Sequence[KernelSpec[Any]] = KERNELS,
    ) -> PipelineReplay:
        """`replay --input`'s pipeline: see the module docstring."""
        return cls(policies, FILE_CATALOG, caps, kernels, one_stream=True)

    def batch(self, topic: str, partition: int, events: Sequence[StreamEvent]) -> list[Decision]:
        """The decisions one ingested batch (accepted events, in partition order) leads to."""
        if not events:
            return []
        decisions: list[Decision] = []
        for kernel in self.kernels:
            decisions += kernel.batch(topic, partition, events)
        return decisions

    def stream(self, events: Sequence[tuple[str, StreamEvent]]) -> list[Decision]:
        """One batch of a file (`for_file`): (topic, event) pairs of any input topics, in
        file order."""
        decisions: list[Decision] = []
        for kernel in self.kernels:
            decisions += kernel.stream(events)
        return decisions

    def core(self, spec: KernelSpec[Any], partition: int = 0) -> Core:
        """`spec`'s core of `partition` (created if new)."""
        kernel: _Kernel[Core] = next(kernel for kernel in self.kernels if kernel.spec is spec)
        return kernel.core(partition)

    def key_maps(self) -> list[CappedMap[Any]]:
        """Every core's capped key map (for a replay's summary)."""
        return [core.keys for kernel in self.kernels for core in kernel.cores.values()]


C = TypeVar("C", bound=Core)
D = TypeVar("D", bound=DirectCore)
R = TypeVar("R", bound=RoutedCore)


class _Kernel(KernelCores[C]):
    def batch(self, topic: str, partition: int, events: Sequence[StreamEvent]) -> list[Decision]:
        raise NotImplementedError

    def stream(self, events: Sequence[tuple[str, StreamEvent]]) -> list[Decision]:
        raise NotImplementedError

    def core(self, partition: int) -> C:
        """The core of `partition` (created on first use)."""
        core = self.cores.get(partition)
        return core if core is not None else self.build(partition)


class _Direct(_Kernel[D]):
    def batch(self, topic: str, partition: int, events: Sequence[StreamEvent]) -> list[Decision]:
        if topic not in self.inputs:
            return []
        decide = self.core(partition).decider(topic)
        if decide is None:
            return []
        decisions: list[Decision] = []
        for event in events:
            decisions += decide(event)
        return decisions

    def stream(self, events: Sequence[tuple[str, StreamEvent]]) -> list[Decision]:
        decider = self.core(0).decider
        decisions: list[Decision] = []
        for topic, event in events:
            decide = decider(topic)
            if decide is not None:
                decisions += decide(event)
        return decisions


class _Routed(_Kernel[R]):
    def __init__(
        self,
        spec: KernelSpec[R],
        policies: PolicySet,
        catalog: TopicCatalog,
        caps: KeyCaps,
        *,
        one_stream: bool,
    ) -> None:
        super().__init__(spec, policies, catalog, caps, one_stream=one_stream)
        assert spec.router is not None
        self._route = spec.router(policies)
        self._every = list(range(self.partitions))
        self._partitioner = DefaultPartitioner()
        self._marks: dict[tuple[str, int], int] = {}

    def batch(self, topic: str, partition: int, events: Sequence[StreamEvent]) -> list[Decision]:
        if topic not in self.inputs and topic != FILE_SOURCE[0]:
            return []
        routed = self._route(events, source_topic=topic, source_partition=partition)
        decisions: list[Decision] = []
        every, partitioner = self._every, self._partitioner
        for record in routed.records:
            # One partition (a file): no need to hash the key (murmur2 in Python, ~10 us).
            target = partitioner(record.key.encode(), every, every) if len(every) > 1 else 0
            self.core(target).add(record)
        return decisions + self.watermark(topic, partition, routed.reached_ms)

    def stream(self, events: Sequence[tuple[str, StreamEvent]]) -> list[Decision]:
        return self.batch(FILE_SOURCE[0], FILE_SOURCE[1], [event for _, event in events])

    def watermark(self, topic: str, partition: int, reached: int) -> list[Decision]:
        """The input partition's watermark, as `RoutedSender.watermark` sends it (only
        forward, to every routed partition)."""
        if reached <= self._marks.get((topic, partition), -1):
            return []
        self._marks[(topic, partition)] = reached
        mark = SourceWatermark(source_topic=topic, source_partition=partition, ts_ms=reached)
        decisions: list[Decision] = []
        for target in self._every:
            decisions += self.core(target).watermark(mark)
        return decisions
