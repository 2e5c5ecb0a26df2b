"""The worker's pipeline without Kafka: what its agents decide for a sequence of ingested
batches, using the code the agents run (DESIGN §8: "all replay paths use the kernels the
agents use").

`PipelineReplay.batch(topic, partition, events)` is one ingested batch of one input partition:
- breakers: the engine of that partition (tool-invocations, with latency-events of the same
  partition number; clock ticks move time only from tool-invocations), as `BreakerSink` does;
- budgets: the batch routed and summed per key and second (`route_batch`), through the
  `budget-spend` wire format, into the counting core (`BudgetCounting`) with the partition's
  watermark, as `BudgetRouterSink` and `BudgetCounter` do;
- SLOs: the same with `count_batch` and `SloCounting`.

Budget and SLO counters are one per routed-topic partition, as live: a routed record goes to
the partition its key hashes to (Kafka's default partitioner, as the agents' producer sends
it) and a watermark to every partition. Each key's items are released by the same watermarks
in the same event-time order whichever partition holds it; what a partition holds matters
once its engine reaches its share of the worker's key cap (`KeyCaps.share`), as it does live.

`file_engines` builds what `replay --input` runs instead: one engine per kernel over the
whole file (one stream, so each holds the worker's whole cap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import encode
from schemas.stream import StreamEvent
from schemas.watermark import SourceWatermark
from topics.catalog import TopicCatalog, TopicName
from workers.breakers.engine import BreakerEngine, apply_batch
from workers.budgets.counting import BudgetCounting
from workers.budgets.engine import BudgetEngine
from workers.budgets.records import route_batch
from workers.decisions import Decision
from workers.kernels.key_cap import CappedMap, KeyCaps, KeyLimit, StateKind
from workers.policies.policy_set import PolicySet
from workers.replay.run import DecisionEngine
from workers.routed.counting import RoutedCounting
from workers.slos.counting import SloCounting
from workers.slos.engine import SloEngine
from workers.slos.records import count_batch
from workers.slos.routing import SLO_INPUTS, SloRouter, targets_of

BUDGET_INPUTS = (TopicName.TOOL_INVOCATIONS, TopicName.COST_EVENTS)

C = TypeVar("C", bound=RoutedCounting[Any])


class PipelineReplay:
    def __init__(
        self, policies: PolicySet, catalog: TopicCatalog, caps: KeyCaps | None = None
    ) -> None:
        """`caps`: the worker's key caps (`Settings.key_caps`), shared out per partition."""
        caps = caps or KeyCaps()
        self.policies = policies
        self._caps = caps
        self._tool_topic = catalog.name(TopicName.TOOL_INVOCATIONS)
        self._tool_partitions = catalog.spec(TopicName.TOOL_INVOCATIONS).partitions
        self._latency_topic = catalog.name(TopicName.LATENCY_EVENTS)
        self.breakers: dict[int, BreakerEngine] = {}
        self._marks: dict[tuple[int, str, int], int] = {}
        self.budgets: _Routed[BudgetCounting] | None = None
        self._budget_inputs = {catalog.name(topic) for topic in BUDGET_INPUTS}
        if policies.budgets.budgets:
            budget_sources = _sources(catalog, BUDGET_INPUTS)
            self.budgets = _Routed(
                catalog.spec(TopicName.BUDGET_SPEND).partitions,
                lambda limit: BudgetCounting(policies.budgets, budget_sources, limit),
                caps,
                StateKind.BUDGETS,
            )
        self.slos: _Routed[SloCounting] | None = None
        self._slo_inputs = {catalog.name(topic) for topic in SLO_INPUTS}
        self._slo_router = SloRouter(targets_of(policies.slos))
        if self._slo_router.targets:
            slo_sources = _sources(catalog, SLO_INPUTS)
            self.slos = _Routed(
                catalog.spec(TopicName.SLO_COUNTS).partitions,
                lambda limit: SloCounting(policies.slos, slo_sources, limit),
                caps,
                StateKind.SLOS,
            )

    def batch(self, topic: str, partition: int, events: Sequence[StreamEvent]) -> list[Decision]:
        """The decisions one ingested batch (accepted events, in partition order) leads to."""
        if not events:
            return []
        decisions = self._breakers(topic, partition, events)
        if self.budgets is not None and topic in self._budget_inputs:
            routed = route_batch(
                self.policies.budgets, events, source_topic=topic, source_partition=partition
            )
            for spend in routed.records:
                decisions += self.budgets.send(spend.key, encode(spend))
            decisions += self._watermark(self.budgets, topic, partition, routed.reached_ms)
        if self.slos is not None and topic in self._slo_inputs:
            counted = count_batch(
                self._slo_router, events, source_topic=topic, source_partition=partition
            )
            for counts in counted.records:
                decisions += self.slos.send(counts.key, encode(counts))
            decisions += self._watermark(self.slos, topic, partition, counted.reached_ms)
        return decisions

    def _breakers(
        self, topic: str, partition: int, events: Sequence[StreamEvent]
    ) -> list[Decision]:
        if topic not in (self._tool_topic, self._latency_topic):
            return []
        engine = self.breakers.get(partition)
        if engine is None:
            limit = self._caps.share(StateKind.BREAKERS, self._tool_partitions, partition)
            engine = self.breakers[partition] = BreakerEngine(self.policies.breakers, limit)
        return apply_batch(engine, events, ticks_apply=topic == self._tool_topic)

    def _watermark(
        self, routed: _Routed[Any], topic: str, partition: int, reached: int
    ) -> list[Decision]:
        """The partition's watermark, as `RoutedSender.watermark` sends it (only forward)."""
        key = (id(routed), topic, partition)
        if reached <= self._marks.get(key, -1):
            return []
        self._marks[key] = reached
        mark = SourceWatermark(source_topic=topic, source_partition=partition, ts_ms=reached)
        return routed.broadcast(encode(mark))


class _Routed(Generic[C]):
    """A routed topic's counters, one per partition (created on first use), as the agents
    hold them: a record goes to its key's partition, a watermark to every one."""

    def __init__(
        self, partitions: int, counting: Callable[[KeyLimit], C], caps: KeyCaps, kind: StateKind
    ) -> None:
        self._every = list(range(partitions))
        self._partitioner = DefaultPartitioner()
        self._counting = counting
        self._caps = caps
        self._kind = kind
        self.partitions: dict[int, C] = {}

    def send(self, key: str, value: bytes) -> list[Decision]:
        every = self._every
        return self._partition(self._partitioner(key.encode(), every, every)).apply(value)

    def broadcast(self, value: bytes) -> list[Decision]:
        decisions: list[Decision] = []
        for partition in self._every:
            decisions += self._partition(partition).apply(value)
        return decisions

    def _partition(self, partition: int) -> C:
        counting = self.partitions.get(partition)
        if counting is None:
            limit = self._caps.share(self._kind, len(self._every), partition)
            counting = self.partitions[partition] = self._counting(limit)
        return counting


def capped_keys(engines: Iterable[DecisionEngine]) -> list[CappedMap[Any]]:
    """The capped key maps of `engines` (for a replay's summary)."""
    maps: list[CappedMap[Any]] = []
    for engine in engines:
        if isinstance(engine, BreakerEngine):
            maps.append(engine.keys)
        elif isinstance(engine, BudgetEngine):
            maps.append(engine.ledgers)
        elif isinstance(engine, SloEngine):
            maps.append(engine.trackers)
    return maps


def file_engines(policies: PolicySet, caps: KeyCaps) -> list[DecisionEngine]:
    """The engines `replay --input` runs a file through: breakers, and budgets and SLOs when
    the policies have any, each holding the whole of the worker's cap of its kind."""
    engines: list[DecisionEngine] = [
        BreakerEngine(policies.breakers, caps.whole(StateKind.BREAKERS))
    ]
    if policies.budgets.budgets:
        engines.append(BudgetEngine(policies.budgets, caps.whole(StateKind.BUDGETS)))
    if targets_of(policies.slos):
        engines.append(SloEngine(policies.slos, caps.whole(StateKind.SLOS)))
    return engines


def _sources(catalog: TopicCatalog, topics: Sequence[TopicName]) -> list[tuple[str, int]]:
    """The input partitions a counter waits for (the catalog's, as the agents do)."""
    return [
        (catalog.name(topic), partition)
        for topic in topics
        for partition in range(catalog.spec(topic).partitions)
    ]
