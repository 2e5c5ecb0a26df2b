"""One `budget-spend` partition's counting (pure): routed spend back in event-time order
under the low watermark of the input partitions (`routed.counting`), into a `BudgetEngine`.
`touched` collects the keys of the ledgers whose state may have changed (for budget-state). A
second's rows of one key are counted as one spend (`merged_seconds`), keys in key order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel

from schemas.budget_spend import BudgetSpend
from schemas.clock import ClockTick
from schemas.state import BudgetState
from workers.budgets.engine import BudgetEngine
from workers.budgets.records import budget_state, spends_of, state_topic_key
from workers.budgets.routing import Spend
from workers.decisions import Decision
from workers.kernels.key_cap import CappedMap, KeyLimit
from workers.policies.budgets import BudgetPolicy
from workers.routed.counting import RoutedCounting
from workers.routed.reorder import Source


class BudgetCounting(RoutedCounting[Spend, BudgetSpend]):
    model = BudgetSpend

    def __init__(
        self, policy: BudgetPolicy, sources: Iterable[Source], limit: KeyLimit | None = None
    ) -> None:
        """`limit`: the engine's cap on split budget keys (`BudgetEngine`)."""
        super().__init__(sources)
        self.engine = BudgetEngine(policy, limit)
        self.touched: set[str] = set()
        self._policy = policy
        self._version = policy.version

    def _unpack(self, record: BudgetSpend) -> tuple[Source, list[Spend]]:
        source = (record.source_topic, record.source_partition)
        return source, spends_of(record, self._policy.budgets)

    def _count(self, items: list[Spend]) -> list[Decision]:
        engine, touched = self.engine, self.touched
        decisions: list[Decision] = []
        for spend in merged_seconds(items):
            decisions += engine.record(spend)
            touched.add(engine.key_of(spend))
        return decisions

    def _advance(self, low: int) -> list[Decision]:
        engine = self.engine
        moved = engine.apply(ClockTick.at(low - 1))  # everything below `low` is counted
        ledgers = engine.ledgers
        self.touched.update(d.key for d in moved if d.key in ledgers)
        return moved

    def gauges(self) -> Iterator[tuple[str, str, float, str]]:
        """(budget id, ledger key, utilization, action) of every ledger (per-key metrics:
        no record built per scrape)."""
        for ledger in self.engine:
            if ledger.period is not None:
                yield (
                    ledger.config.budget_id,
                    ledger.key,
                    float(ledger.utilization()),
                    ledger.action,
                )

    def states(self) -> Iterator[BudgetState]:
        """Every budget key it counts, in its current period."""
        for ledger in self.engine:
            state = budget_state(ledger, self._version)
            if state is not None:
                yield state

    def take_state_records(self) -> list[tuple[bytes, BaseModel]]:
        """`budget-state` records of the ledgers touched since the last call, in key order."""
        touched, self.touched = self.touched, set()
        records: list[tuple[bytes, BaseModel]] = []
        ledgers = self.engine.ledgers
        for key in sorted(touched):
            ledger = ledgers[key]
            state = budget_state(ledger, self._version)
            if state is not None:
                records.append((state_topic_key(ledger).encode(), state))
        return records

    @property
    def keys(self) -> CappedMap[Any]:
        return self.engine.ledgers


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
