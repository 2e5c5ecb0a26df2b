"""One `slo-counts` partition's counting (pure): routed rows back in event-time order under
the low watermark of the input partitions (`routed.counting`), into an `SloEngine`."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.clock import ClockTick
from schemas.slo_counts import SloCounts
from workers.decisions import Decision
from workers.kernels.key_cap import KeyLimit
from workers.policies.slos import SloPolicy
from workers.routed.counting import RoutedCounting
from workers.routed.reorder import Source
from workers.slos.engine import SloEngine
from workers.slos.records import SloItem, items_of


class SloCounting(RoutedCounting[SloItem]):
    def __init__(
        self, policy: SloPolicy, sources: Iterable[Source], limit: KeyLimit | None = None
    ) -> None:
        """`limit`: the engine's cap on grouped tracker keys (`SloEngine`)."""
        self.engine = engine = SloEngine(policy, limit)

        def parse(raw: bytes) -> tuple[Source, list[SloItem]]:
            record = SloCounts.model_validate_json(raw)
            source = (record.source_topic, record.source_partition)
            return source, items_of(record, engine.targets)

        def advance(low: int) -> list[Decision]:
            # Everything below `low` is counted: the seconds before low's are complete.
            return engine.advance(low, ClockTick.at(low).event_id)

        def count(items: list[SloItem]) -> list[Decision]:
            return [decision for item in items for decision in engine.measure(item)]

        super().__init__(sources, parse=parse, count=count, advance=advance)
