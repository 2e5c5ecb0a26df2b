"""BreakerEngine: routing, the alert lifecycle and the decision line format, without Kafka."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.clock import ClockTick
from schemas.events import LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride
from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import from_epoch_ms
from tests.support.pipelines import breakers_only
from workers.breakers.engine import BreakerEngine
from workers.decisions import AlertDecision, Decision, TransitionDecision
from workers.policies.breakers import BreakerPolicy
from workers.replay.run import Replay

T0 = 1_795_000_000_000
WAIT_MS = 1000

SPEC: dict[str, Any] = {
    "breakers": {
        "vendors": {
            "failure_threshold": 3,
            "minimum_number_of_calls": 100,
            "sliding_window_type": "count",
            "sliding_window_size": 100,
            "wait_in_open_ms": WAIT_MS,
            "permitted_calls_in_half_open": 2,
            "success_threshold": 2,
            "error_types": ["503", "timeout"],
        },
        "quiet": {"failure_threshold": 1, "alert_on_open": False, "wait_in_open_ms": WAIT_MS},
        "off": {"enabled": False},
        "latency": {
            "failure_threshold": 0,
            "trip_conditions": [
                {"metric": "latency_p95", "threshold": 500, "window_ms": 1000, "name": "p95"}
            ],
        },
    },
    "rules": [
        {"vendor": "quiet*", "breaker": "quiet"},
        {"vendor": "legacy", "breaker": "off"},
        {"vendor": "slowco", "breaker": "latency"},
    ],
    "default": "vendors",
}


def policy(spec: dict[str, Any] = SPEC) -> BreakerPolicy:
    return BreakerPolicy.from_document(PolicyDocument.from_spec(PolicyKind.BREAKERS, "t", spec))


def call(
    n: int, vendor: str = "openai", *, ok: bool = True, ts_ms: int | None = None
) -> ToolInvocation:
    return ToolInvocation(
        event_id=f"{vendor}-{n}",
        ts=from_epoch_ms(T0 + n if ts_ms is None else ts_ms),
        vendor=vendor,
        tool="chat",
        status="success" if ok else "error",
        error_type=None if ok else "503",
        duration_ms=10,
    )


def run(engine: BreakerEngine, events: Iterable[Any]) -> list[Decision]:
    return [decision for event in events for decision in engine.apply(event)]


def transitions(decisions: list[Decision]) -> list[tuple[str, str, str]]:
    return [
        (d.key, d.from_state, d.to_state) for d in decisions if isinstance(d, TransitionDecision)
    ]


def alerts(decisions: list[Decision]) -> list[str]:
    return [str(d.alert.status) for d in decisions if isinstance(d, AlertDecision)]


def test_failures_open_only_the_failing_breaker_with_one_alert() -> None:
    engine = BreakerEngine(policy())
    events = [call(n, "anthropic") for n in range(5)] + [call(n, ok=False) for n in range(10, 15)]
    decisions = run(engine, events)
    assert transitions(decisions) == [("openai/chat", "closed", "open")]
    assert alerts(decisions) == ["firing"]
    opened = decisions[0]
    assert opened.event_id == "openai-12"  # the third consecutive failure
    assert isinstance(decisions[1], AlertDecision)
    assert decisions[1].alert.labels["vendor"] == "openai"
    anthropic = engine.state_of("anthropic/chat")
    assert anthropic is not None
    assert anthropic.state.value == "closed"


def test_flapping_between_open_and_half_open_is_one_incident() -> None:
    engine = BreakerEngine(policy())
    decisions = run(engine, [call(n, ok=False) for n in range(3)])
    t = T0 + 2
    for attempt in range(3):  # each trial fails: HALF_OPEN -> OPEN again, with backoff 1x
        t += WAIT_MS + 1
        decisions += run(engine, [ClockTick.at(t), call(100 + attempt, ok=False, ts_ms=t + 1)])
        t += 1
    t += WAIT_MS + 1
    decisions += run(engine, [ClockTick.at(t), call(200, ts_ms=t + 1), call(201, ts_ms=t + 2)])
    flaps = ["open", "half_open"] * 4
    assert [to for _, _, to in transitions(decisions)] == [*flaps, "closed"]
    assert alerts(decisions) == ["firing", "resolved"]
    fired, resolved = (d.alert for d in decisions if isinstance(d, AlertDecision))
    assert fired.fingerprint == resolved.fingerprint
    assert resolved.ends_at is not None
    assert resolved.starts_at == fired.starts_at


def test_a_clock_tick_moves_only_breakers_whose_wait_elapsed() -> None:
    engine = BreakerEngine(policy())
    run(engine, [call(n, ok=False) for n in range(3)])
    run(engine, [call(n, "mistral", ok=False, ts_ms=T0 + 500 + n) for n in range(3)])
    decisions = engine.apply(ClockTick.at(T0 + 2 + WAIT_MS + 1))
    assert transitions(decisions) == [("openai/chat", "open", "half_open")]
    assert decisions[0].event_id == f"clock-{T0 + 2 + WAIT_MS + 1}"
    # Exactly at retry_at is not "after the wait".
    assert engine.apply(ClockTick.at(T0 + 502 + WAIT_MS)) == []


def test_breakers_without_an_alert_and_disabled_breakers() -> None:
    engine = BreakerEngine(policy())
    decisions = run(engine, [call(0, "quietco", ok=False), call(1, "legacy", ok=False)] * 3)
    assert transitions(decisions) == [("quietco/chat", "closed", "open")]
    assert alerts(decisions) == []
    assert engine.state_of("legacy/chat") is None  # not governed at all
    assert len(engine) == 1


def test_latency_events_feed_a_p95_trip_condition() -> None:
    engine = BreakerEngine(policy())
    slow = [
        LatencyEvent(
            event_id=f"l{n}", ts=from_epoch_ms(T0 + n), vendor="slowco", tool="chat",
            latency_ms=900, kind="total",
        )
        for n in range(20)
    ]  # fmt: skip
    decisions = run(engine, [*slow, ClockTick.at(T0 + 5000)])
    [(key, _, to)] = transitions(decisions)
    assert (key, to) == ("slowco/chat", "open")
    opened = next(d for d in decisions if isinstance(d, TransitionDecision))
    assert opened.reason.startswith("trip_condition")
    assert opened.evidence["trip_value"] > 500


def test_decision_lines_are_the_stable_interface() -> None:
    engine = BreakerEngine(policy())
    transition, alert = run(engine, [call(n, ok=False) for n in range(3)])
    line = orjson.loads(orjson.dumps(transition.to_json()))
    assert {"type", "kernel", "key", "ts", "event_id", "from", "to"} <= line.keys()
    assert (line["type"], line["kernel"], line["from"], line["to"]) == (
        "transition", "breaker", "closed", "open",
    )  # fmt: skip
    assert line["ts"] == "2026-11-18T11:06:40.002Z"
    alert_line = orjson.loads(orjson.dumps(alert.to_json()))
    assert {"status", "severity", "fingerprint", "labels"} <= alert_line.keys()
    assert (alert_line["type"], alert_line["status"]) == ("alert", "firing")


_EVENT = st.one_of(
    st.builds(
        lambda n, vendor, ok, dt: call(n, vendor, ok=ok, ts_ms=T0 + dt),
        st.integers(0, 10**6),
        st.sampled_from(["openai", "anthropic", "quietco"]),
        st.booleans(),
        st.integers(0, 20_000),
    ),
    st.builds(lambda dt: ClockTick.at(T0 + dt), st.integers(0, 20_000)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_EVENT, max_size=120))
def test_replaying_the_same_input_twice_gives_identical_output(events: list[Any]) -> None:
    first = [d.to_json() for d in run(BreakerEngine(policy()), events)]
    second = [d.to_json() for d in run(BreakerEngine(policy()), events)]
    assert first == second


def test_replay_counts_duplicates_and_invalid_lines() -> None:
    lines = [
        orjson.dumps(call(0, ok=False).model_dump(mode="json")),
        orjson.dumps(call(0, ok=False).model_dump(mode="json")),  # same event_id
        b"{not json",
        orjson.dumps({"vendor": "x"}),
        orjson.dumps({"type": "clock", "ts": T0 + 10}),
    ]
    replay = Replay(breakers_only(policy()), dedup_horizon_ms=60_000, dedup_max_ids=100)
    assert list(replay.run(enumerate(lines, start=1))) == []
    counts = replay.counts
    assert (counts.events, counts.duplicates, counts.invalid, counts.clock_ticks) == (1, 1, 2, 1)
    assert counts.errors[0].startswith("line 3: not valid JSON")
    assert counts.errors[1].startswith("line 4:")


def test_a_rate_limited_call_with_retry_after_opens_until_that_instant() -> None:
    engine = BreakerEngine(policy())
    limited = call(0, ok=False).model_copy(
        update={"error_type": "rate_limit", "attributes": {"retry_after_s": "30"}}
    )
    spec = {**SPEC, "breakers": {**SPEC["breakers"]}}
    spec["breakers"]["vendors"] = {**SPEC["breakers"]["vendors"], "error_types": ["rate_limit"]}
    engine = BreakerEngine(policy(spec))
    [opened] = [d for d in engine.apply(limited) if isinstance(d, TransitionDecision)]
    assert opened.reason == "rate_limit_retry_after"
    assert opened.details["retry_at"] == "2026-11-18T11:07:10.000Z"  # ts + 30 s
    # A retry-after nobody can parse is just a failure.
    garbled = limited.model_copy(update={"event_id": "g", "attributes": {"retry_after_ms": "soon"}})
    assert BreakerEngine(policy(spec)).apply(garbled) == []


def override(action: str, ts_ms: int, vendor: str = "openai") -> BreakerOverride:
    return BreakerOverride.model_validate(
        {"ts": ts_ms, "vendor": vendor, "tool": "chat", "action": action, "actor": "oncall"}
    )


def test_operator_overrides_are_audited_transitions_and_resolve_alerts() -> None:
    engine = BreakerEngine(policy())
    decisions = run(engine, [call(n, ok=False) for n in range(3)])  # opens, alert fires
    decisions += engine.apply(override("disable", T0 + 10))
    decisions += engine.apply(override("force_open", T0 + 20))
    decisions += run(engine, [call(30 + n, ok=True, ts_ms=T0 + 30 + n) for n in range(3)])
    decisions += engine.apply(override("reset", T0 + 40))
    assert [(f, t) for _, f, t in transitions(decisions)] == [
        ("closed", "open"),
        ("open", "disabled"),
        ("disabled", "forced_open"),
        ("forced_open", "closed"),
    ]
    assert alerts(decisions) == ["firing", "resolved"]  # forced open is not an incident
    disabled = next(
        d for d in decisions if isinstance(d, TransitionDecision) and d.to_state == "disabled"
    )
    assert disabled.details["actor"] == "oncall"
    assert disabled.event_id == f"override-openai/chat-{T0 + 10}"
    state = engine.state_of("openai/chat")
    assert state is not None
    assert state.state.value == "closed"


def test_overrides_travel_and_replay_like_events() -> None:
    line = orjson.dumps(
        {
            "type": "breaker_override",
            "ts": T0,
            "vendor": "openai",
            "tool": "chat",
            "action": "force_open",
        }
    )
    replay = Replay(breakers_only(policy()), dedup_horizon_ms=60_000, dedup_max_ids=100)
    [decision] = list(replay.run([(1, line)]))
    assert decision.to_json()["to"] == "forced_open"
    bad = orjson.dumps(
        {"type": "breaker_override", "ts": T0, "vendor": "x", "tool": "y", "action": "nuke"}
    )
    replay = Replay(breakers_only(policy()), dedup_horizon_ms=60_000, dedup_max_ids=100)
    assert list(replay.run([(1, bad)])) == []
    assert "action" in replay.counts.errors[0]
