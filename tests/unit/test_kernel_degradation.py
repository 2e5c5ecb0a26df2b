"""Degradation strategies: the seed's performance_degraded (p95 latency breached 5 min or
throughput 3 min): fires exactly at the duration, not before, an interruption resets the
timer, once per episode, restored when no trigger's objective is breached; clock steps do not
change the outputs (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.kernels.degradation import (
    DegradationOutput,
    DegradationTracker,
    Degraded,
    Restored,
)
from workers.kernels.slo_targets_config import (
    DegradationAction,
    DegradationStrategy,
    DegradationTrigger,
)

T0_MS = 1_767_225_600_000
MINUTE_MS = 60_000
LATENCY = "fusion_latency_p95"
THROUGHPUT = "fusion_throughput_minimum"
PARAMETERS = {"ENTROPY_REDUCTION_TARGET": "0.60", "AGGRESSIVE_CACHING": "true"}


def performance_degraded(latency_minutes: int = 5) -> DegradationStrategy:
    return DegradationStrategy(
        strategy_id="performance_degraded",
        triggers=(
            DegradationTrigger(objective_id=LATENCY, breach_duration_ms=latency_minutes * 60_000),
            DegradationTrigger(objective_id=THROUGHPUT, breach_duration_ms=3 * MINUTE_MS),
        ),
        actions=(
            DegradationAction(
                type="reduce_overlay_complexity", parameter="ENTROPY_REDUCTION_TARGET", value="0.60"
            ),
            DegradationAction(type="enable_caching", parameter="AGGRESSIVE_CACHING", value="true"),
        ),
    )


def degraded(ts_ms: int, objective_id: str, since_ms: int) -> Degraded:
    return Degraded(
        strategy_id="performance_degraded",
        ts_ms=ts_ms,
        target="global",
        parameters=PARAMETERS,
        objective_id=objective_id,
        breached_since_ms=since_ms,
    )


def restored(ts_ms: int, degraded_at_ms: int) -> Restored:
    return Restored(
        strategy_id="performance_degraded",
        ts_ms=ts_ms,
        target="global",
        parameters=PARAMETERS,
        degraded_at_ms=degraded_at_ms,
    )


def test_fires_exactly_at_the_duration_not_before() -> None:
    tracker = DegradationTracker(performance_degraded())
    assert tracker.observe(LATENCY, True, T0_MS) == []
    assert tracker.breached_since(LATENCY) == T0_MS
    assert tracker.advance(T0_MS + 5 * MINUTE_MS - 1) == []
    assert not tracker.active
    assert tracker.advance(T0_MS + 5 * MINUTE_MS) == [
        degraded(T0_MS + 5 * MINUTE_MS, LATENCY, T0_MS)
    ]
    assert tracker.active
    assert tracker.degraded_at_ms == T0_MS + 5 * MINUTE_MS


def test_a_big_step_fires_at_the_due_time() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.observe(LATENCY, True, T0_MS)
    assert tracker.advance(T0_MS + 60 * MINUTE_MS) == [
        degraded(T0_MS + 5 * MINUTE_MS, LATENCY, T0_MS)
    ]
    assert tracker.advance(T0_MS + 120 * MINUTE_MS) == []  # once per episode


def test_an_observation_past_the_due_time_fires_it_first() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.observe(LATENCY, True, T0_MS)
    out = tracker.observe(THROUGHPUT, True, T0_MS + 7 * MINUTE_MS)
    assert out == [degraded(T0_MS + 5 * MINUTE_MS, LATENCY, T0_MS)]


def test_an_interruption_resets_the_timer() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.observe(LATENCY, True, T0_MS)
    assert tracker.observe(LATENCY, False, T0_MS + 4 * MINUTE_MS) == []
    assert tracker.breached_since(LATENCY) is None
    assert tracker.advance(T0_MS + 6 * MINUTE_MS) == []
    restart = T0_MS + 6 * MINUTE_MS + 30_000
    tracker.observe(LATENCY, True, restart)
    # a repeated breached=True does not restart the timer
    assert tracker.observe(LATENCY, True, restart + MINUTE_MS) == []
    assert tracker.breached_since(LATENCY) == restart
    assert tracker.advance(restart + 5 * MINUTE_MS - 1) == []
    assert tracker.advance(restart + 5 * MINUTE_MS) == [
        degraded(restart + 5 * MINUTE_MS, LATENCY, restart)
    ]


def test_breach_ending_exactly_at_the_due_time_still_degrades() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.observe(LATENCY, True, T0_MS)
    due = T0_MS + 5 * MINUTE_MS
    assert tracker.observe(LATENCY, False, due) == [
        degraded(due, LATENCY, T0_MS),
        restored(due, due),
    ]
    assert not tracker.active


def test_earliest_due_trigger_wins_and_restore_needs_all_clear() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.observe(LATENCY, True, T0_MS)
    tracker.observe(THROUGHPUT, True, T0_MS + MINUTE_MS)  # due at 4 min, before latency's 5
    out = tracker.advance(T0_MS + 10 * MINUTE_MS)
    assert out == [degraded(T0_MS + 4 * MINUTE_MS, THROUGHPUT, T0_MS + MINUTE_MS)]
    # one objective recovers: the other is still breached, still degraded
    assert tracker.observe(LATENCY, False, T0_MS + 11 * MINUTE_MS) == []
    assert tracker.active
    # the latency breach again while degraded: no repeat
    assert tracker.observe(LATENCY, True, T0_MS + 12 * MINUTE_MS) == []
    assert tracker.advance(T0_MS + 30 * MINUTE_MS) == []
    assert tracker.observe(THROUGHPUT, False, T0_MS + 31 * MINUTE_MS) == []
    out = tracker.observe(LATENCY, False, T0_MS + 32 * MINUTE_MS)
    assert out == [restored(T0_MS + 32 * MINUTE_MS, T0_MS + 4 * MINUTE_MS)]
    assert not tracker.active
    # a new episode
    tracker.observe(THROUGHPUT, True, T0_MS + 40 * MINUTE_MS)
    assert tracker.advance(T0_MS + 43 * MINUTE_MS) == [
        degraded(T0_MS + 43 * MINUTE_MS, THROUGHPUT, T0_MS + 40 * MINUTE_MS)
    ]


def test_ties_go_to_the_first_trigger() -> None:
    tracker = DegradationTracker(performance_degraded(latency_minutes=3))
    tracker.observe(THROUGHPUT, True, T0_MS)
    tracker.observe(LATENCY, True, T0_MS)
    assert tracker.advance(T0_MS + 3 * MINUTE_MS) == [
        degraded(T0_MS + 3 * MINUTE_MS, LATENCY, T0_MS)
    ]


def test_unknown_ids_are_ignored_and_unbreach_without_breach_is_nothing() -> None:
    tracker = DegradationTracker(performance_degraded())
    assert tracker.observe("fusion_quality_score", True, T0_MS) == []
    assert tracker.advance(T0_MS + 60 * MINUTE_MS) == []
    assert tracker.observe(LATENCY, False, T0_MS + 61 * MINUTE_MS) == []
    assert tracker.breached_since("fusion_quality_score") is None


def test_zero_duration_fires_on_observe() -> None:
    strategy = DegradationStrategy(
        strategy_id="availability_critical",
        triggers=(DegradationTrigger(objective_id="fusion_availability", breach_duration_ms=0),),
        actions=(DegradationAction(type="x", parameter="MINIMAL_MODE", value="true"),),
        target="fusion",
    )
    tracker = DegradationTracker(strategy)
    (out,) = tracker.observe("fusion_availability", True, T0_MS)
    assert isinstance(out, Degraded)
    assert (out.ts_ms, out.target, out.parameters) == (T0_MS, "fusion", {"MINIMAL_MODE": "true"})


def test_old_observations_count_at_the_newest_time() -> None:
    tracker = DegradationTracker(performance_degraded())
    tracker.advance(T0_MS + 10 * MINUTE_MS)
    tracker.observe(LATENCY, True, T0_MS)  # older than the clock: breached from 10 min
    assert tracker.breached_since(LATENCY) == T0_MS + 10 * MINUTE_MS
    assert tracker.advance(T0_MS + 15 * MINUTE_MS - 1) == []
    assert len(tracker.advance(T0_MS + 15 * MINUTE_MS)) == 1


# --- clock steps do not matter ---

Event = tuple[str, str, bool, int]


def _run(events: list[Event]) -> list[DegradationOutput]:
    tracker = DegradationTracker(performance_degraded())
    out: list[DegradationOutput] = []
    for kind, objective_id, breached, ts in events:
        if kind == "advance":
            out += tracker.advance(ts)
        else:
            out += tracker.observe(objective_id, breached, ts)
    return out


@settings(max_examples=150, deadline=None)
@given(
    changes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=8 * MINUTE_MS),
            st.sampled_from([LATENCY, THROUGHPUT, "other"]),
            st.booleans(),
        ),
        max_size=25,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=4),
)
def test_clock_steps_do_not_change_outputs(
    changes: list[tuple[int, str, bool]], cuts: list[int]
) -> None:
    big: list[Event] = []
    small: list[Event] = []
    now = T0_MS
    for gap, objective_id, breached in changes:
        small += [("advance", "", False, now + gap * c // 100) for c in sorted(cuts)]
        now += gap
        event: Event = ("observe", objective_id, breached, now)
        big.append(event)
        small.append(event)
    big.append(("advance", "", False, now + 10 * MINUTE_MS))
    small.append(("advance", "", False, now + 10 * MINUTE_MS))
    out = _run(big)
    assert _run(small) == out
    # outputs alternate Degraded / Restored, in time order, and each Degraded is exactly one
    # duration after its breach began
    assert [type(o) for o in out] == [(Degraded, Restored)[i % 2] for i in range(len(out))]
    assert [o.ts_ms for o in out] == sorted(o.ts_ms for o in out)
    durations = {LATENCY: 5 * MINUTE_MS, THROUGHPUT: 3 * MINUTE_MS}
    for o in out:
        if isinstance(o, Degraded):
            assert o.ts_ms == o.breached_since_ms + durations[o.objective_id]
