"""One `slo-counts` partition's counting (pure): routed rows back in event-time order under
the low watermark of the input partitions (`routed.counting`), into an `SloEngine`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from schemas.clock import ClockTick
from schemas.slo_counts import SloCounts
from workers.decisions import Decision
from workers.kernels.key_cap import CappedMap, KeyLimit
from workers.policies.slos import SloPolicy
from workers.routed.counting import RoutedCounting
from workers.routed.reorder import Source
from workers.slos.engine import SloEngine
from workers.slos.records import SloItem, items_of


class SloCounting(RoutedCounting[SloItem, SloCounts]):
    model = SloCounts

    def __init__(
        self, policy: SloPolicy, sources: Iterable[Source], limit: KeyLimit | None = None
    ) -> None:
        """`limit`: the engine's cap on grouped tracker keys (`SloEngine`)."""
        super().__init__(sources)
        self.engine = SloEngine(policy, limit)

    def _unpack(self, record: SloCounts) -> tuple[Source, list[SloItem]]:
        source = (record.source_topic, record.source_partition)
        return source, items_of(record, self.engine.targets)

    def _count(self, items: list[SloItem]) -> list[Decision]:
        measure = self.engine.measure
        return [decision for item in items for decision in measure(item)]

    def _advance(self, low: int) -> list[Decision]:
        # Everything below `low` is counted: the seconds before low's are complete.
        return self.engine.advance(low, ClockTick.at(low).event_id)

    def states(self) -> list[BaseModel]:
        return self.engine.states()

    def take_state_records(self) -> list[tuple[bytes, BaseModel]]:
        """`slo-state` records of the trackers touched since the last call."""
        engine = self.engine
        touched, engine.touched = engine.touched, set()
        return [(state_key(state).encode(), state) for state in engine.states(touched)]

    @property
    def keys(self) -> CappedMap[Any]:
        return self.engine.trackers


def state_key(state: BaseModel) -> str:
    """An `slo-state` record's key (SLO, objective and SLA states all carry one)."""
    return str(getattr(state, "key", ""))
