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

Budget and SLO counters are one per routed-topic partition live; here one counting core holds
every key, which decides the same: each key's items are released by the same watermarks in
the same event-time order whichever partition holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.codec import encode
from schemas.stream import StreamEvent
from schemas.watermark import SourceWatermark
from topics.catalog import TopicCatalog, TopicName
from workers.breakers.engine import BreakerEngine, apply_batch
from workers.budgets.counting import BudgetCounting
from workers.budgets.records import route_batch
from workers.decisions import Decision
from workers.policies.policy_set import PolicySet
from workers.routed.counting import RoutedCounting
from workers.slos.counting import SloCounting
from workers.slos.records import count_batch
from workers.slos.routing import SLO_INPUTS, SloRouter, targets_of

BUDGET_INPUTS = (TopicName.TOOL_INVOCATIONS, TopicName.COST_EVENTS)


class PipelineReplay:
    def __init__(self, policies: PolicySet, catalog: TopicCatalog) -> None:
        self.policies = policies
        self._tool_topic = catalog.name(TopicName.TOOL_INVOCATIONS)
        self._latency_topic = catalog.name(TopicName.LATENCY_EVENTS)
        self.breakers: dict[int, BreakerEngine] = {}
        self._marks: dict[tuple[int, str, int], int] = {}
        self.budgets: BudgetCounting | None = None
        self._budget_inputs = {catalog.name(topic) for topic in BUDGET_INPUTS}
        if policies.budgets.budgets:
            self.budgets = BudgetCounting(policies.budgets, _sources(catalog, BUDGET_INPUTS))
        self.slos: SloCounting | None = None
        self._slo_inputs = {catalog.name(topic) for topic in SLO_INPUTS}
        self._slo_router = SloRouter(targets_of(policies.slos))
        if self._slo_router.targets:
            self.slos = SloCounting(policies.slos, _sources(catalog, SLO_INPUTS))

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
                decisions += self.budgets.apply(encode(spend))
            decisions += self._watermark(self.budgets, topic, partition, routed.reached_ms)
        if self.slos is not None and topic in self._slo_inputs:
            counted = count_batch(
                self._slo_router, events, source_topic=topic, source_partition=partition
            )
            for counts in counted.records:
                decisions += self.slos.apply(encode(counts))
            decisions += self._watermark(self.slos, topic, partition, counted.reached_ms)
        return decisions

    def _breakers(
        self, topic: str, partition: int, events: Sequence[StreamEvent]
    ) -> list[Decision]:
        if topic not in (self._tool_topic, self._latency_topic):
            return []
        engine = self.breakers.get(partition)
        if engine is None:
            engine = self.breakers[partition] = BreakerEngine(self.policies.breakers)
        return apply_batch(engine, events, ticks_apply=topic == self._tool_topic)

    def _watermark(
        self, counting: RoutedCounting[Any], topic: str, partition: int, reached: int
    ) -> list[Decision]:
        """The partition's watermark, as `RoutedSender.watermark` sends it (only forward)."""
        key = (id(counting), topic, partition)
        if reached <= self._marks.get(key, -1):
            return []
        self._marks[key] = reached
        mark = SourceWatermark(source_topic=topic, source_partition=partition, ts_ms=reached)
        return counting.apply(encode(mark))


def _sources(catalog: TopicCatalog, topics: Sequence[TopicName]) -> list[tuple[str, int]]:
    """The input partitions a counter waits for (the catalog's, as the agents do)."""
    return [
        (catalog.name(topic), partition)
        for topic in topics
        for partition in range(catalog.spec(topic).partitions)
    ]
