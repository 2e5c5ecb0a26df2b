"""The worker's status page: `/status` (HTML, no build step) and `/status.json`, what it draws.

What this worker holds now (its partitions; the fleet-wide state is the compacted topics):
breakers as tiles by state, budgets as utilization bars with their action, SLO burn rates with
a chart over the last hours, what needs attention now (open breakers, throttled or halted
budgets, alerting SLOs, objectives past a level), and dead-letter counts. The page polls
`/status.json` every few seconds.

The burn-rate history is sampled here, on the worker's wall clock, for the page only: it
is not a decision and replay does not reproduce it. At most `MAX_CHARTED_SLOS` SLO keys are
charted (the most recently changed), `HISTORY_POINTS` samples each.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.state import (
    BreakerState,
    BudgetAction,
    BudgetState,
    CircuitState,
    ObjectiveLevel,
    ObjectiveState,
    SloState,
)
from workers.ingest.stage import IngestCounters

SAMPLE_EVERY_S = 30.0
HISTORY_POINTS = 720
"""Six hours at one sample every 30 s."""
MAX_CHARTED_SLOS = 50
MAX_TILES = 500
"""States of one kind sent to the page at most (the attention list first)."""

M = TypeVar("M", bound=BaseModel)

_ATTENTION_BREAKERS = {CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.FORCED_OPEN}


def status_page_html() -> str:
    return resources.files("workers.shell").joinpath("status.html").read_text(encoding="utf-8")


class BurnHistory:
    """Recent burn rates per SLO key, for the page's charts."""

    def __init__(self, max_keys: int = MAX_CHARTED_SLOS, points: int = HISTORY_POINTS) -> None:
        self.max_keys = max_keys
        self.points = points
        self._series: OrderedDict[str, deque[tuple[int, dict[str, float]]]] = OrderedDict()

    def sample(self, states: Iterable[SloState], now_ms: int) -> None:
        for state in states:
            key = state.key or state.slo_id
            series = self._series.pop(key, None) or deque(maxlen=self.points)
            series.append((now_ms, dict(state.burn_rates)))
            self._series[key] = series
            while len(self._series) > self.max_keys:
                self._series.popitem(last=False)

    def as_json(self) -> dict[str, list[list[Any]]]:
        return {key: [[t, rates] for t, rates in series] for key, series in self._series.items()}


def status_document(
    states: Mapping[str, Sequence[BaseModel]],
    counters: IngestCounters,
    history: BurnHistory,
    now_ms: int,
) -> dict[str, Any]:
    """What `/status.json` answers: `states` by page name (breakers, budgets, slos)."""
    breakers = of_type(states.get("breakers", ()), BreakerState)
    budgets = of_type(states.get("budgets", ()), BudgetState)
    slos = of_type(states.get("slos", ()), SloState)
    objectives = of_type(states.get("slos", ()), ObjectiveState)
    breakers.sort(key=_breaker_order)
    budgets.sort(key=lambda b: -b.utilization)
    slos.sort(key=lambda s: s.error_budget_remaining)
    dead: dict[str, int] = {}
    for (_, kind), count in counters.rejected.items():
        dead[kind] = dead.get(kind, 0) + count
    return {
        "now_ms": now_ms,
        "attention": _attention(breakers, budgets, slos, objectives),
        "breakers": _dumped(breakers),
        "budgets": _dumped(budgets),
        "slos": _dumped(slos),
        "burn_history": history.as_json(),
        "dead_letters": dead,
        "accepted": sum(counters.accepted.values()),
    }


def of_type(states: Iterable[BaseModel], model: type[M]) -> list[M]:
    return [state for state in states if isinstance(state, model)]


def _attention(
    breakers: Sequence[BreakerState],
    budgets: Sequence[BudgetState],
    slos: Sequence[SloState],
    objectives: Sequence[ObjectiveState],
) -> list[dict[str, str]]:
    items = [
        {"kind": "breaker", "key": b.key, "what": b.state.value, "detail": b.reason or ""}
        for b in breakers
        if b.state in _ATTENTION_BREAKERS
    ]
    items += [
        {
            "kind": "budget",
            "key": b.budget_id,
            "what": b.action.value,
            "detail": f"{b.utilization:.0%} of ${b.limit_usd}" if b.limit_usd else "",
        }
        for b in budgets
        if b.action is not BudgetAction.ALLOW
    ]
    items += [
        {"kind": "slo", "key": s.key or s.slo_id, "what": notify, "detail": f"tier {tier}"}
        for s in slos
        for notify, tier in s.alerting.items()
    ]
    items += [
        {
            "kind": "objective",
            "key": o.key or o.slo_id,
            "what": o.level.value,
            "detail": f"{o.metric} {o.value}",
        }
        for o in objectives
        if o.level is not ObjectiveLevel.OK
    ]
    return items


def _breaker_order(state: BreakerState) -> tuple[int, str]:
    return (0 if state.state in _ATTENTION_BREAKERS else 1, state.key)


def _dumped(states: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [state.model_dump(mode="json") for state in states[:MAX_TILES]]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
