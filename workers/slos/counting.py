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
    def __init__(
        self, policy: SloPolicy, sources: Iterable[Source], limit: KeyLimit | None = None
    ) -> None:
        """`limit`: the engine's cap on grouped tracker keys (`SloEngine`)."""
        self.engine = engine = SloEngine(policy, limit)

        def unpack(record: SloCounts) -> tuple[Source, list[SloItem]]:
            source = (record.source_topic, record.source_partition)
            return source, items_of(record, engine.targets)

        def advance(low: int) -> list[Decision]:
            # Everything below `low` is counted: the seconds before low's are complete.
            return engine.advance(low, ClockTick.at(low).event_id)

        def count(items: list[SloItem]) -> list[Decision]:
            return [decision for item in items for decision in engine.measure(item)]

        super().__init__(sources, model=SloCounts, unpack=unpack, count=count, advance=advance)

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
