"""Routed spend records and budget-state records."""

from __future__ import annotations

from decimal import Decimal

from schemas.budget_spend import MAX_SLICES
from schemas.codec import decode, encode
from schemas.state import BudgetAction
from tests.unit.test_budget_engine import call, engine
from workers.budgets.records import budget_state, spend_records, spends_of, state_topic_key
from workers.budgets.routing import route


def test_spend_round_trips_through_records_in_order_and_in_chunks() -> None:
    policy = engine().policy
    spends = [s for n in range(MAX_SLICES + 5) for s in route(policy, call(n, "0.01"))]
    records = spend_records(spends, source_topic="t", source_partition=3)
    by_key = {r.key for r in records}
    assert by_key == {"bud.team.research", "bud.user/ana"}
    assert sorted(len(r.rows) for r in records) == [5, 5, MAX_SLICES, MAX_SLICES]
    again = [
        spend
        for record in records
        for spend in spends_of(decode(type(record), encode(record)), policy.budgets)
    ]
    assert sorted(again) == sorted(spends)
    assert spends_of(records[0].model_copy(update={"budget_id": "gone"}), policy.budgets) == []


def test_budget_state_says_what_a_gateway_needs() -> None:
    e = engine()
    for n in range(10):
        e.apply(call(n, "9.6", user=f"u{n}"))  # $96 of $100: throttled at 95 %
    state = budget_state(e.ledgers["bud.team.research"], e.policy.version)
    assert state is not None
    assert (state.spent_usd, state.limit_usd, state.remaining_usd) == (
        Decimal("96"), Decimal(100), Decimal(4),
    )  # fmt: skip
    assert state.utilization == 0.96
    assert state.thresholds_crossed == [50, 80, 95]
    assert (state.action, state.decided_by) == (BudgetAction.THROTTLE, "threshold:95")
    assert state.period_start.isoformat() == "2026-11-18T00:00:00+00:00"
    # $96 in the first 9 minutes of the day projects far past the limit.
    assert state.projected_spend_usd > 10_000


def test_a_split_budget_s_state_names_its_own_values() -> None:
    e = engine()
    e.apply(call(0, "1", user="ana"))
    ledger = e.ledgers["bud.user/ana"]
    state = budget_state(ledger, e.policy.version)
    assert state is not None
    assert state.scope == {"team": "research", "user": "ana"}
    assert state_topic_key(ledger) == "bud.user/ana@2026-11-18"


def test_a_sources_spend_is_summed_per_key_and_second() -> None:
    policy = engine().policy
    same_second = [call(0, "1", ts_ms=1_794_960_000_100), call(1, "2", ts_ms=1_794_960_000_900)]
    spends = [s for event in same_second for s in route(policy, event)]
    [team] = [
        r for r in spend_records(spends, source_topic="t", source_partition=0)
        if r.key == "bud.team.research"
    ]  # fmt: skip
    assert team.rows == [(1_794_960_000_000, 3_000_000_000, 0, 2, "e1", 2_000_000_000)]
