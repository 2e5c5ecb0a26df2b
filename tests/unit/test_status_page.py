"""What the status page draws (workers.shell.status): what needs attention, the order of the
tiles and bars, dead letters by kind, and a burn-rate history bounded in keys and points."""

from __future__ import annotations

from decimal import Decimal

from schemas.state import (
    BreakerState,
    BudgetAction,
    BudgetPeriod,
    BudgetState,
    CircuitState,
    SloState,
)
from schemas.types import from_epoch_ms
from workers.ingest.stage import IngestCounters
from workers.shell.status import BurnHistory, status_document, status_page_html

T0 = 1_795_000_000_000
V = "d" * 64


def breaker(key: str, state: CircuitState) -> BreakerState:
    at = from_epoch_ms(T0)
    return BreakerState(
        key=key, state=state, since=at, policy_id="p", policy_version=V, updated_at=at
    )


def budget(budget_id: str, utilization: float, action: BudgetAction) -> BudgetState:
    at = from_epoch_ms(T0)
    return BudgetState(
        budget_id=budget_id,
        period=BudgetPeriod.DAILY,
        period_start=at,
        period_end=at,
        spent_usd=Decimal(1),
        limit_usd=Decimal(10),
        utilization=utilization,
        projected_spend_usd=Decimal(1),
        action=action,
        policy_version=V,
        updated_at=at,
    )


def slo(key: str, remaining: float, alerting: dict[str, str] | None = None) -> SloState:
    return SloState(
        slo_id="slo.a",
        key=key,
        target=0.99,
        good=90,
        total=100,
        error_budget_remaining=remaining,
        burn_rates={"1h": 2.0},
        alerting=alerting or {},
        policy_version=V,
        updated_at=from_epoch_ms(T0),
    )


def test_attention_lists_open_breakers_refusing_budgets_and_alerting_slos_only() -> None:
    counters = IngestCounters()
    counters.rejected[("t1", "schema")] += 2
    counters.rejected[("t2", "schema")] += 1
    counters.rejected[("t2", "too_large")] += 1
    document = status_document(
        {
            "breakers": [
                breaker("b/closed", CircuitState.CLOSED),
                breaker("a/open", CircuitState.OPEN),
            ],
            "budgets": [
                budget("fine", 0.2, BudgetAction.ALLOW),
                budget("hot", 0.97, BudgetAction.THROTTLE),
            ],
            "slos": [slo("slo.a/x", 0.9), slo("slo.a/y", -0.1, {"page": "page-1h"})],
        },
        counters,
        BurnHistory(),
        T0,
    )
    assert [(a["kind"], a["key"], a["what"]) for a in document["attention"]] == [
        ("breaker", "a/open", "open"),
        ("budget", "hot", "throttle"),
        ("slo", "slo.a/y", "page"),
    ]
    assert [b["key"] for b in document["breakers"]] == ["a/open", "b/closed"]
    assert [b["budget_id"] for b in document["budgets"]] == ["hot", "fine"]
    assert [s["key"] for s in document["slos"]] == ["slo.a/y", "slo.a/x"]
    assert document["dead_letters"] == {"schema": 3, "too_large": 1}


def test_the_burn_history_keeps_the_latest_keys_and_points() -> None:
    history = BurnHistory(max_keys=2, points=3)
    for minute in range(5):
        history.sample([slo("k1", 1.0), slo("k2", 1.0)], T0 + minute * 60_000)
    history.sample([slo("k3", 1.0)], T0 + 10 * 60_000)
    series = history.as_json()
    assert list(series) == ["k2", "k3"]
    assert [t for t, _ in series["k2"]] == [T0 + m * 60_000 for m in (2, 3, 4)]
    assert series["k3"] == [[T0 + 600_000, {"1h": 2.0}]]


def test_the_page_is_one_self_contained_html_file() -> None:
    html = status_page_html()
    assert html.startswith("<!doctype html>")
    assert 'fetch("status.json"' in html
    assert "<script src" not in html  # no build, no CDN: it works offline
