"""One `budget-spend` partition's counting (pure): routed spend back in event-time order
under the low watermark of the input partitions (`routed.counting`), into a `BudgetEngine`.
`touched` collects the keys of the ledgers whose state may have changed (for budget-state). A
second's rows of one key are counted as one spend (`merged_seconds`), keys in key order."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.budget_spend import BudgetSpend
from schemas.clock import ClockTick
from workers.budgets.engine import BudgetEngine
from workers.budgets.records import spends_of
from workers.budgets.routing import Spend
from workers.decisions import Decision
from workers.kernels.key_cap import KeyLimit
from workers.policies.budgets import BudgetPolicy
from workers.routed.counting import RoutedCounting
from workers.routed.reorder import Source


class BudgetCounting(RoutedCounting[Spend]):
    def __init__(
        self, policy: BudgetPolicy, sources: Iterable[Source], limit: KeyLimit | None = None
    ) -> None:
        """`limit`: the engine's cap on split budget keys (`BudgetEngine`)."""
        self.engine = engine = BudgetEngine(policy, limit)
        self.touched: set[str] = set()

        def parse(raw: bytes) -> tuple[Source, list[Spend]]:
            record = BudgetSpend.model_validate_json(raw)
            return (record.source_topic, record.source_partition), spends_of(record, policy.budgets)

        def count(spends: list[Spend]) -> list[Decision]:
            decisions: list[Decision] = []
            for spend in merged_seconds(spends):
                decisions += engine.record(spend)
                self.touched.add(engine.key_of(spend))
            return decisions

        def advance(low: int) -> list[Decision]:
            moved = engine.apply(ClockTick.at(low - 1))  # everything below `low` is counted
            ledgers = engine.ledgers
            self.touched.update(d.key for d in moved if d.key in ledgers)
            return moved

        super().__init__(sources, parse=parse, count=count, advance=advance)


def merged_seconds(spends: list[Spend]) -> list[Spend]:
    """One spend per budget key and second (the sources' rows of that second summed), keys in
    key order within a second: a ledger sees a second's spend at once, so what it decides (a
    threshold crossed at which total) does not depend on how the sources batched their
    events, and neither does which new keys a full engine admits (`BudgetEngine`)."""
    merged: dict[tuple[int, str], Spend] = {}
    for spend in spends:
        slot = (spend.ts_ms, spend.key)
        seen = merged.get(slot)
        merged[slot] = (
            spend
            if seen is None
            else seen._replace(
                nanos=seen.nanos + spend.nanos,
                tokens=seen.tokens + spend.tokens,
                requests=seen.requests + spend.requests,
                event_id=spend.event_id,
                largest_nanos=max(seen.largest_nanos, spend.largest_nanos),
            )
        )
    return sorted(merged.values(), key=lambda spend: (spend.ts_ms, spend.key))
