"""Key caps in the engines (issue 11, "key cardinality"): producer-chosen keys past the cap do
not grow state, their traffic is still judged (overflow states), `cardinality_limit` fires
once, and replaying the same input decides the same."""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.clock import ClockTick
from schemas.events import ToolInvocation
from schemas.policy import PolicyDocument, PolicyKind
from schemas.stream import StreamEvent
from schemas.types import from_epoch_ms
from tests.support.policy_files import CONFIGS
from tests.support.policy_specs import PER_USER_BUDGET
from topics.catalog import TopicCatalog, TopicName
from workers.breakers.engine import BreakerEngine
from workers.budgets.engine import BudgetEngine
from workers.cardinality import OVERFLOW_LABEL
from workers.decisions import AlertDecision, Decision, Kernel, TransitionDecision
from workers.kernels.key_cap import RESOLVE_AFTER_MS, KeyCaps, KeyCounts, KeyLimit, StateKind
from workers.kernels.slo import SloTracker
from workers.metrics import CardinalityCollector, render
from workers.policies.breakers import BreakerPolicy
from workers.policies.budgets import BudgetPolicy
from workers.policies.policy_set import PolicySet, load_policies
from workers.policies.slos import from_document
from workers.replay.pipeline import PipelineReplay
from workers.replay.trail import project
from workers.settings import Mode
from workers.slos.engine import SloEngine

T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z
CAP = 5


def call(n: int, *, tool: str = "chat", user: str = "ana", ok: bool = True,
         ts_ms: int | None = None, usd: str = "0", **extra: Any) -> ToolInvocation:  # fmt: skip
    return ToolInvocation(
        event_id=f"e{n}",
        ts=from_epoch_ms(T0 + n * 100 if ts_ms is None else ts_ms),
        vendor="openai",
        tool=tool,
        status="success" if ok else "error",
        error_type=None if ok else "503",
        duration_ms=10,
        cost_usd=Decimal(usd),
        team="research",
        user=user,
        **extra,
    )


def run(engine: Any, events: Sequence[StreamEvent]) -> list[Decision]:
    return [decision for event in events for decision in engine.apply(event)]


def cardinality(decisions: list[Decision]) -> list[tuple[str, str, str]]:
    return [
        (d.key, str(d.alert.status), d.alert.labels["state"])
        for d in decisions
        if isinstance(d, AlertDecision) and d.alert.kind == "cardinality_limit"
    ]


def limit(kind: StateKind, max_keys: int = CAP) -> KeyLimit:
    return KeyLimit(kind, max_keys)


# --- breakers ---------------------------------------------------------------------------------


def breakers(window: dict[str, Any]) -> BreakerPolicy:
    spec = {"breakers": {"default": {"failure_threshold": 3, "wait_in_open_ms": 60_000, **window}}}
    return BreakerPolicy.from_document(PolicyDocument.from_spec(PolicyKind.BREAKERS, "t", spec))


COUNT_WINDOW = {"sliding_window_type": "count", "sliding_window_size": 10}
TIME_WINDOW = {"sliding_window_type": "time", "sliding_window_size": 1}  # one second


def test_new_tools_past_the_cap_do_not_grow_the_breakers_and_alert_once() -> None:
    engine = BreakerEngine(breakers(COUNT_WINDOW), limit(StateKind.BREAKERS))
    decisions = run(engine, [call(n, tool=f"tool-{n}") for n in range(1_000)])
    assert engine.keys.admitted == CAP
    assert len(engine) == CAP + 1  # and one overflow breaker for the refused keys' calls
    assert len(engine._routes) <= CAP  # refused tools are not cached either
    assert engine.keys.refused == 1_000 - CAP
    assert cardinality(decisions) == [("~cardinality/breakers", "firing", "breakers")]
    [alert] = [d.alert for d in decisions if isinstance(d, AlertDecision)]
    assert alert.evidence == [f"e{CAP}"]  # the first key refused
    assert (alert.value, alert.threshold) == (CAP, CAP)


def test_failures_of_refused_tools_open_the_overflow_breaker() -> None:
    engine = BreakerEngine(breakers(COUNT_WINDOW), limit(StateKind.BREAKERS))
    run(engine, [call(n, tool=f"held-{n}") for n in range(CAP)])
    decisions = run(engine, [call(100 + n, tool=f"new-{n}", ok=False) for n in range(3)])
    opened = [
        (d.key, d.to_state) for d in decisions if isinstance(d, TransitionDecision)
    ]  # each new tool failed once; together they are three failures in a row
    assert opened == [(f"{OVERFLOW_LABEL}/default", "open")]
    overflow = engine.state_of(f"{OVERFLOW_LABEL}/default")
    assert overflow is not None
    assert overflow.state.value == "open"


def test_idle_breakers_are_evicted_instead_and_decide_as_without_a_cap() -> None:
    """Time windows empty out: a breaker whose window holds nothing any more is evicted to
    make room, and nothing is refused, so the decisions are those of an uncapped engine."""
    events: list[StreamEvent] = []
    for n in range(400):
        # 10 new tools a second (that succeed: a failure streak would keep a breaker busy)
        events.append(call(n, tool=f"tool-{n}"))
        failing = 100 <= n < 103  # "busy" opens, then recovers after its wait
        events += [call(10_000 + n * 4 + k, tool="busy", ok=not failing, ts_ms=T0 + n * 100 + k)
                   for k in range(4)]  # fmt: skip
        if n % 10 == 9:
            events.append(ClockTick.at(T0 + n * 100 + 50))
    policy = breakers({**TIME_WINDOW, "wait_in_open_ms": 2_000})
    capped = BreakerEngine(policy, limit(StateKind.BREAKERS, 40))
    free = BreakerEngine(policy, limit(StateKind.BREAKERS, 100_000))
    capped_decisions = run(capped, events)
    free_decisions = run(free, events)
    assert [(d.key, d.to_state) for d in free_decisions if isinstance(d, TransitionDecision)] == [
        ("openai/busy", "open"),
        ("openai/busy", "half_open"),
        ("openai/busy", "closed"),
    ]
    assert len(capped.keys) <= 40 < len(free.keys)
    assert capped.keys.refused == 0
    assert capped.keys.evicted > 0
    alerts = cardinality(capped_decisions)
    assert alerts == [("~cardinality/breakers", "firing", "breakers")]
    assert [d for d in capped_decisions if not cardinality([d])] == free_decisions
    # No new key for the quiet period: the alert resolves, once.
    quiet = [ClockTick.at(T0 + 40_000 + ms) for ms in range(0, RESOLVE_AFTER_MS + 2_000, 1_000)]
    assert cardinality(run(capped, quiet)) == [("~cardinality/breakers", "resolved", "breakers")]


def test_a_capped_breaker_replay_is_deterministic() -> None:
    rng = random.Random(3)
    events: list[StreamEvent] = [
        call(n, tool=f"tool-{rng.randrange(60)}", ok=rng.random() > 0.3) for n in range(2_000)
    ]
    events += [ClockTick.at(T0 + ms) for ms in range(0, 200_000, 5_000)]
    events.sort(key=lambda event: event.ts)
    first = run(BreakerEngine(breakers(TIME_WINDOW), limit(StateKind.BREAKERS, 8)), events)
    second = run(BreakerEngine(breakers(TIME_WINDOW), limit(StateKind.BREAKERS, 8)), events)
    assert [d.to_json() for d in first] == [d.to_json() for d in second]
    assert cardinality(first)


# --- budgets ----------------------------------------------------------------------------------

BUDGETS: dict[str, Any] = {
    "budgets": {
        "bud.team": {"scope": {"team": "research"}, "period": "daily", "limit_usd": 1000},
        "bud.user": PER_USER_BUDGET,
    }
}


def budgets(max_keys: int = CAP) -> BudgetEngine:
    document = PolicyDocument.from_spec(PolicyKind.BUDGETS, "t", BUDGETS)
    return BudgetEngine(BudgetPolicy.from_document(document), limit(StateKind.BUDGETS, max_keys))


def test_new_users_past_the_cap_share_the_budget_s_overflow_ledger() -> None:
    engine = budgets()
    decisions = run(engine, [call(n, user=f"u{n}", usd="1") for n in range(1_000)])
    assert engine.ledgers.admitted == CAP
    assert set(engine.ledgers) == {"bud.team", "bud.user", *(f"bud.user/u{n}" for n in range(CAP))}
    overflow = engine.ledgers["bud.user"]
    assert overflow.spent_nanos == (1_000 - CAP) * 10**9  # every refused user's dollar
    assert cardinality(decisions) == [("~cardinality/budgets", "firing", "budgets")]


def test_the_overflow_ledger_alerts_no_later_than_each_user_would() -> None:
    engine = budgets()
    run(engine, [call(n, user=f"held{n}", usd="1") for n in range(CAP)])
    decisions = run(engine, [call(100 + n, user=f"new{n}", usd="5") for n in range(6)])
    threshold = [
        (d.key, d.alert.labels["threshold_percent"])
        for d in decisions
        if isinstance(d, AlertDecision) and d.alert.kind == "budget_threshold"
    ]
    assert threshold == [("bud.user", "100")]  # 6 x 5 USD together; 5 USD alone never would


def test_unsplit_budgets_are_never_refused() -> None:
    engine = budgets(max_keys=1)
    run(engine, [call(n, user=f"u{n}", usd="1") for n in range(10)])
    assert engine.ledgers["bud.team"].spent_nanos == 10 * 10**9


# --- SLOs -------------------------------------------------------------------------------------

SLOS: dict[str, Any] = {
    "slos": {
        "slo.tools": {
            "sli": {"kind": "availability"},
            "target": 0.99,
            "period": "1d",
            "group_by": ["vendor", "tool"],
            "min_events": 5,
        },
        "slo.fleet": {"sli": {"kind": "availability"}, "target": 0.99, "period": "1d"},
    }
}


def slos(max_keys: int = CAP) -> SloEngine:
    policy = from_document(PolicyDocument.from_spec(PolicyKind.SLOS, "slos", SLOS))
    return SloEngine(policy, limit(StateKind.SLOS, max_keys))


def test_new_tools_past_the_cap_share_the_slo_s_overflow_tracker() -> None:
    engine = slos()
    events: list[StreamEvent] = [call(n, tool=f"tool-{n:04}", ts_ms=T0 + n) for n in range(1_000)]
    decisions = run(engine, events)
    # Within the second being summed, only as many new keys as there is room for are held.
    assert len(engine.info) <= CAP + 2  # + the overflow and the ungrouped SLO
    decisions += engine.apply(ClockTick.at(T0 + 2_000))
    keys = set(engine.trackers)
    smallest = {f"slo:slo.tools/openai/tool-{n:04}" for n in range(CAP)}
    assert keys == {*smallest, "slo:slo.tools", "slo:slo.fleet"}
    assert engine.info["slo:slo.tools"].labels == {"vendor": OVERFLOW_LABEL, "tool": OVERFLOW_LABEL}
    assert cardinality(decisions) == [("~cardinality/slos", "firing", "slos")]


def test_which_slo_keys_fit_does_not_depend_on_their_order_within_a_second() -> None:
    events = [call(n, tool=f"tool-{n:03}", ok=n % 3 != 0, ts_ms=T0 + n) for n in range(200)]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    tick = ClockTick.at(T0 + 2_000)
    first, second = slos(), slos()
    in_order = run(first, [*events, tick])
    reordered = run(second, [*shuffled, tick])
    assert set(first.trackers) == set(second.trackers)
    assert [d.to_json() for d in in_order] != []
    assert Counter(_kinds(in_order)) == Counter(_kinds(reordered))
    overflows = [engine.trackers["slo:slo.tools"] for engine in (first, second)]
    assert all(isinstance(tracker, SloTracker) for tracker in overflows)
    assert [t.snapshot().valid for t in overflows] == [200 - CAP] * 2  # type: ignore[union-attr]


def _kinds(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    return [(d.key, d.ts_ms, type(d).__name__) for d in decisions]


# --- the pipeline the worker runs (and replay --source audit / topics) -------------------------


def unique_keys(events: int) -> list[tuple[int, ToolInvocation]]:
    """(partition, event): every event a new tool and a new research user (configs/ has a
    budget split by user and SLOs grouped by vendor/tool), over two input partitions."""
    return [
        (n % 2, call(n, tool=f"tool-{n}", user=f"user-{n}", usd="0.5", model="gpt-4",
                     ok=n % 4 != 0, ts_ms=T0 + n * 10))
        for n in range(events)
    ]  # fmt: skip


@functools.cache
def configs() -> PolicySet:
    return load_policies(CONFIGS, Mode.DEVELOPMENT)


def pipeline_decisions(batch: int) -> tuple[Counter[Any], PipelineReplay]:
    catalog = TopicCatalog(input_partitions=2)
    policies = configs()
    pipeline = PipelineReplay(policies, catalog, KeyCaps(breakers=8, budgets=8, slos=8))
    topic = catalog.name(TopicName.TOOL_INVOCATIONS)
    by_partition: dict[int, list[StreamEvent]] = {0: [], 1: []}
    for partition, event in unique_keys(300):
        by_partition[partition].append(event)
    for partition in (0, 1):
        by_partition[partition].append(ClockTick.at(T0 + 10_000))
    decisions: list[Decision] = []
    for start in range(0, 151, batch):  # the partitions' batches in turn
        for partition in (0, 1):
            chunk = by_partition[partition][start : start + batch]
            decisions += pipeline.batch(topic, partition, chunk)
    for other in (TopicName.COST_EVENTS, TopicName.LATENCY_EVENTS):  # idle: their ticks
        for partition in (0, 1):
            tick = ClockTick.at(T0 + 10_000)
            decisions += pipeline.batch(catalog.name(other), partition, [tick])
    projected = Counter(p for d in decisions if (p := project(d.to_json())) is not None)
    return projected, pipeline


def test_the_pipeline_caps_each_partition_s_share_and_does_not_depend_on_batching() -> None:
    small, pipeline = pipeline_decisions(batch=7)
    large, _ = pipeline_decisions(batch=128)
    assert small == large
    assert any(key.startswith("~cardinality/") for _, _, key, *_ in small)
    assert [kernel.spec.kernel for kernel in pipeline.kernels] == list(Kernel)
    for kernel in pipeline.kernels:
        assert kernel.cores
        for core in kernel.cores.values():
            assert core.keys.admitted <= 4  # 8 per worker over 2 partitions


# --- metrics ----------------------------------------------------------------------------------


def test_the_metrics_count_held_refused_and_evicted_keys_per_kind() -> None:
    engine = BreakerEngine(breakers(COUNT_WINDOW), limit(StateKind.BREAKERS))
    run(engine, [call(n, tool=f"tool-{n}") for n in range(12)])
    registry = CollectorRegistry()
    counts = {"breakers": KeyCounts.of([engine.keys]), "dedup": KeyCounts(40, 0, 3)}
    registry.register(CardinalityCollector(lambda: counts, {"breakers": CAP, "dedup": 100}))
    lines = set(render(registry).decode().splitlines())
    assert {
        'guardstream_state_keys{state="breakers"} 5.0',
        'guardstream_state_keys_max{state="breakers"} 5.0',
        'guardstream_state_keys_refused_total{state="breakers"} 7.0',
        'guardstream_state_keys_evicted_total{state="breakers"} 0.0',
        'guardstream_state_keys_evicted_total{state="dedup"} 3.0',
    } <= lines
