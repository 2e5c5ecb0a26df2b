"""Per-key gauges are capped (workers.metrics): breakers not closed and the most used budgets
first, the rest counted, whatever number of keys producers create."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from workers.metrics import MAX_KEYED_SERIES, BreakerCollector, BudgetCollector, SloCollector


def exposition(collector: object) -> str:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_breaker_state_shows_the_open_ones_first_and_counts_the_rest() -> None:
    keys = [(f"vendor{n:05}/chat", "closed") for n in range(1000)] + [("zz/chat", "open")]
    text = exposition(
        BreakerCollector(lambda: {"closed": 1000, "open": 1}, lambda: 0, lambda: 0, lambda: keys)
    )
    shown = [line for line in text.splitlines() if line.startswith("guardstream_breaker_state{")]
    assert len(shown) == MAX_KEYED_SERIES
    assert shown[0] == 'guardstream_breaker_state{key="zz/chat",state="open"} 1.0'
    assert f"guardstream_breaker_state_keys_omitted {1001 - MAX_KEYED_SERIES}.0" in text


def test_budget_gauges_show_the_most_used_keys_with_their_action() -> None:
    gauges = [("bud.user", f"u{n}", n / 1000, "allow") for n in range(500)]
    gauges.append(("bud.team", "research", 1.2, "halt"))
    text = exposition(BudgetCollector(lambda: 0, lambda: 0, lambda: gauges))
    lines = text.splitlines()
    used = [line for line in lines if line.startswith("guardstream_budget_utilization_ratio{")]
    assert len(used) == MAX_KEYED_SERIES
    assert used[0] == 'guardstream_budget_utilization_ratio{budget="bud.team",key="research"} 1.2'
    assert 'guardstream_budget_action{action="halt",budget="bud.team",key="research"} 1.0' in lines
    assert 'guardstream_budget_utilization_ratio{budget="bud.user",key="u0"} 0.0' not in lines
    assert f"guardstream_budget_keys_omitted {501 - MAX_KEYED_SERIES}.0" in text


def test_slo_gauges_show_the_keys_with_the_least_error_budget_left() -> None:
    burns = [(f"slo.a/v{n}", {"1h": 0.5}, 1.0 - n / 1000) for n in range(300)]
    burns.append(("slo.a/worst", {"1h": 20.0}, -0.5))
    text = exposition(SloCollector(lambda: 0, lambda: 0, lambda: iter(burns)))
    left = [
        line
        for line in text.splitlines()
        if line.startswith("guardstream_slo_error_budget_remaining{")
    ]
    assert len(left) == MAX_KEYED_SERIES
    assert left[0] == 'guardstream_slo_error_budget_remaining{slo="slo.a/worst"} -0.5'
    assert 'guardstream_slo_burn_rate{slo="slo.a/worst",window="1h"} 20.0' in text
    assert f"guardstream_slo_keys_omitted {301 - MAX_KEYED_SERIES}.0" in text
