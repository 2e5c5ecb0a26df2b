"""One `budget-spend` partition's counting (pure): routed spend back in event-time order
under the low watermark of the input partitions (`routed.counting`), into a `BudgetEngine`.
`touched` collects the budget keys whose state may have changed (for budget-state)."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.budget_spend import BudgetSpend
from schemas.clock import ClockTick
from workers.budgets.engine import BudgetEngine
from workers.budgets.records import spends_of
from workers.budgets.routing import Spend
from workers.decisions import Decision
from workers.policies.budgets import BudgetPolicy
from workers.routed.counting import RoutedCounting
from workers.routed.reorder import Source


class BudgetCounting(RoutedCounting[Spend]):
    def __init__(self, policy: BudgetPolicy, sources: Iterable[Source]) -> None:
        self.engine = engine = BudgetEngine(policy)
        self.touched: set[str] = set()

        def parse(raw: bytes) -> tuple[Source, list[Spend]]:
            record = BudgetSpend.model_validate_json(raw)
            return (record.source_topic, record.source_partition), spends_of(record, policy.budgets)

        def count(spend: Spend) -> list[Decision]:
            self.touched.add(spend.key)
            return engine.record(spend)

        def advance(low: int) -> list[Decision]:
            moved = engine.apply(ClockTick.at(low - 1))  # everything below `low` is counted
            self.touched.update(decision.key for decision in moved)
            return moved

        super().__init__(sources, parse=parse, count=count, advance=advance)
