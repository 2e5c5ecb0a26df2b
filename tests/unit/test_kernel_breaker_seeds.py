"""The seeds' semantics in the breaker kernel: half-open success thresholds (alpha-solver,
RESONTINEX) and RESONTINEX trip conditions over tumbling event-time windows, driven by events
only (calls, latency measurements, clock events)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.state import CircuitState
from tests.support.breaker_machine import BreakerMachine
from workers.kernels.breaker import (
    BreakerConfig,
    Call,
    Clock,
    Command,
    Event,
    Evidence,
    Latency,
    Override,
    Transition,
    TripCondition,
    TripMetric,
    Verdict,
    initial_state,
    step,
)
from workers.kernels.breaker_windows import Outcome

S = CircuitState
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a multiple of every window below
MINUTE_MS = 60_000


class Machine(BreakerMachine):
    """Feeds events at an advancing event time; keeps every transition."""

    def __init__(self, config: BreakerConfig) -> None:
        super().__init__(config, T0_MS)

    def call(self, *, failed: bool = False, duration_ms: float = 10.0) -> tuple[Transition, ...]:
        verdict = Verdict.FAILURE if failed else Verdict.SUCCESS
        outcome = Outcome(failed=failed, slow=False, duration_ms=duration_ms)
        return self.feed(Call(self.now_ms, verdict, outcome))

    def latency(self, latency_ms: float) -> tuple[Transition, ...]:
        return self.feed(Latency(self.now_ms, latency_ms))

    def at(self, ms_after_t0: int) -> tuple[Transition, ...]:
        """A clock event at T0 + `ms_after_t0`."""
        self.now_ms = T0_MS + ms_after_t0
        return self.feed(Clock(self.now_ms))

    def current(self) -> CircuitState:
        return self.state.state

    def open_then_half_open(self) -> None:
        for _ in range(self.config.failure_threshold):
            self.call(failed=True)
        self.wait_out_open()


# --- half-open success thresholds ---

# alpha-solver cb.vendor.default: failure_threshold 5, success_threshold 2, half_open_requests 3.
ALPHA = BreakerConfig(
    policy_id="cb.vendor.default",
    failure_threshold=5,
    success_threshold=2,
    permitted_calls_in_half_open=3,
    wait_in_open_ms=60_000,
)
# RESONTINEX fusion_primary: half_open_max_calls 3, success_threshold 2, consecutive 3.
FUSION = BreakerConfig(
    policy_id="fusion_primary",
    failure_threshold=5,
    success_threshold=2,
    consecutive_success_threshold=3,
    permitted_calls_in_half_open=3,
    wait_in_open_ms=300_000,
)


def test_alpha_half_open_closes_on_the_second_success() -> None:
    m = Machine(ALPHA)
    m.open_then_half_open()
    assert m.call() == ()  # 1 success of the 2 needed
    (t,) = m.call()  # 2: closes at once, the third permitted call is not needed
    assert (t.from_state, t.to_state, t.reason) == (
        S.HALF_OPEN,
        S.CLOSED,
        "success_threshold_reached",
    )
    assert (t.evidence.half_open_successes, t.evidence.calls) == (2, 2)


def test_alpha_half_open_tolerates_one_failure_of_three() -> None:
    m = Machine(ALPHA)
    m.open_then_half_open()
    m.call(failed=True)  # 0 of 2 with 2 calls left: still possible
    assert m.state.state is S.HALF_OPEN
    m.call()
    (t,) = m.call()  # the third and last permitted call is the second success
    assert t.to_state is S.CLOSED


def test_alpha_half_open_reopens_as_soon_as_closing_is_impossible() -> None:
    m = Machine(ALPHA)
    m.open_then_half_open()
    m.call(failed=True)
    (t,) = m.call(failed=True)  # 0 successes, 1 call left, 2 needed: reopen now
    assert (t.to_state, t.reason, t.attempt) == (S.OPEN, "success_threshold_unreachable", 2)
    assert (t.evidence.calls, t.evidence.failed_calls) == (2, 2)


def test_fusion_half_open_needs_three_in_a_row() -> None:
    m = Machine(FUSION)
    m.open_then_half_open()
    m.call()
    m.call()  # two successes: success_threshold met, but only 2 in a row of the 3 needed
    assert m.state.state is S.HALF_OPEN
    (t,) = m.call()
    assert (t.to_state, t.evidence.consecutive_successes) == (S.CLOSED, 3)


def test_fusion_half_open_reopens_on_the_first_failure() -> None:
    m = Machine(FUSION)
    m.open_then_half_open()
    m.call()
    (t,) = m.call(failed=True)  # a run of 3 can no longer fit in the 1 call left
    assert (t.to_state, t.reason) == (S.OPEN, "success_threshold_unreachable")


def test_seed_half_open_ignores_rates_and_slowness() -> None:
    config = BreakerConfig(
        success_threshold=1,
        permitted_calls_in_half_open=2,
        failure_threshold=1,
        slow_call_rate_threshold_pct=1,
        slow_call_duration_ms=1,
        wait_in_open_ms=1000,
    )
    m = Machine(config)
    m.open_then_half_open()
    slow_success = Outcome(failed=False, slow=True, duration_ms=50)
    (t,) = m.feed(Call(m.now_ms, Verdict.SUCCESS, slow_success))  # a 100 % slow-call rate
    assert (t.to_state, t.reason) == (S.CLOSED, "success_threshold_reached")


def _brute_force(
    outcomes: tuple[bool, ...], permitted: int, successes: int, in_a_row: int
) -> tuple[str, int] | None:
    """The definition, checked by enumerating every continuation: ("close" | "reopen", index
    of the deciding trial call) or None while undecided."""

    def closes_at(sequence: tuple[bool, ...]) -> int | None:
        s = run = 0
        for i, ok in enumerate(sequence):
            s += ok
            run = run + 1 if ok else 0
            if s >= successes and run >= in_a_row:
                return i
        return None

    for n in range(1, len(outcomes) + 1):
        prefix = outcomes[:n]
        if closes_at(prefix) == n - 1:
            return "close", n - 1
        futures = itertools.product((True, False), repeat=permitted - n)
        if not any(closes_at(prefix + future) is not None for future in futures):
            return "reopen", n - 1
    return None


@given(
    permitted=st.integers(1, 5),
    data=st.data(),
)
def test_seed_half_open_matches_the_definition(permitted: int, data: st.DataObject) -> None:
    successes = data.draw(st.integers(0, permitted))
    in_a_row = data.draw(st.integers(0 if successes else 1, permitted))
    outcomes = tuple(data.draw(st.lists(st.booleans(), min_size=permitted, max_size=permitted)))
    config = BreakerConfig(
        failure_threshold=1,
        success_threshold=successes,
        consecutive_success_threshold=in_a_row,
        permitted_calls_in_half_open=permitted,
        wait_in_open_ms=1000,
    )
    m = Machine(config)
    m.open_then_half_open()
    decided: tuple[str, int] | None = None
    for i, ok in enumerate(outcomes):
        out = m.call(failed=not ok)
        if out:
            (t,) = out
            decided = ("close" if t.to_state is S.CLOSED else "reopen", i)
            break
    assert decided == _brute_force(outcomes, permitted, successes, in_a_row)
    assert decided is not None  # the permitted calls always decide


# --- trip conditions ---

P95 = TripCondition(
    TripMetric.LATENCY_P95,
    threshold=5000,
    consecutive_violations=3,
    window_ms=5 * MINUTE_MS,
    name="fusion_overlay_latency_p95",
)
SUCCESS_RATE = TripCondition(
    TripMetric.SUCCESS_RATE, threshold=0.8, consecutive_violations=2, window_ms=10 * MINUTE_MS
)
ERROR_RATE = TripCondition(
    TripMetric.ERROR_RATE, threshold=0.15, consecutive_violations=1, window_ms=MINUTE_MS,
    minimum_calls=4,
)  # fmt: skip


def tripping(*conditions: TripCondition) -> BreakerConfig:
    # No other trigger can fire: a huge minimum for the rates, no consecutive-failure rule.
    return BreakerConfig(minimum_number_of_calls=10_000, trip_conditions=conditions)


def test_latency_p95_trips_after_three_slow_windows() -> None:
    m = Machine(tripping(P95))
    for window in range(3):  # 00:00, 00:05, 00:10: every window's p95 is about 6 s
        m.at(window * 5 * MINUTE_MS)
        for latency_ms in (100.0, 6000.0, 6000.0):
            assert m.latency(latency_ms) == ()
    assert m.state.trips is not None
    assert m.state.trips[0].streak == 2  # the third window is not over yet
    assert m.at(15 * MINUTE_MS - 1) == ()
    (t,) = m.at(15 * MINUTE_MS)  # 00:15: the third window ends, the streak reaches 3
    assert (t.from_state, t.to_state) == (S.CLOSED, S.OPEN)
    assert t.reason == "trip_condition:fusion_overlay_latency_p95"
    assert t.evidence.trip_value is not None
    assert abs(t.evidence.trip_value - 6000) <= 60  # the sketch's 1 %
    assert t.evidence.calls == 0  # latency events never enter the call window


def test_latency_p95_counts_call_durations_too() -> None:
    m = Machine(tripping(P95))
    for window in range(3):
        m.at(window * 5 * MINUTE_MS)
        m.call(duration_ms=7000)
    (t,) = m.at(15 * MINUTE_MS)
    assert t.reason == "trip_condition:fusion_overlay_latency_p95"


def test_a_good_window_resets_the_streak() -> None:
    m = Machine(tripping(SUCCESS_RATE))
    m.call()
    m.call(failed=True)  # 00:00 window: 50 % < 80 %, a violation
    m.at(10 * MINUTE_MS)
    for _ in range(9):
        m.call()
    m.call(failed=True)  # 00:10 window: 90 %: fine
    m.at(20 * MINUTE_MS)  # evaluates 00:10: the streak goes back to 0
    assert m.state.trips is not None
    assert m.state.trips[0].streak == 0
    m.call(failed=True)  # 00:20: violation 1
    m.at(30 * MINUTE_MS)
    m.call(failed=True)  # 00:30: violation 2
    (t,) = m.at(40 * MINUTE_MS)
    assert (t.reason, t.evidence.trip_value) == ("trip_condition:success_rate", 0.0)


def test_empty_windows_neither_violate_nor_reset() -> None:
    m = Machine(tripping(SUCCESS_RATE))
    m.call(failed=True)  # 00:00: a violation
    m.at(10 * MINUTE_MS)  # evaluated: streak 1
    # Three hours without calls (clock events only, and one jump over many windows).
    m.at(60 * MINUTE_MS)
    m.at(3 * 60 * MINUTE_MS)
    assert m.state.trips is not None
    assert m.state.trips[0].streak == 1
    m.call(failed=True)  # 03:00: violation 2
    (t,) = m.at(3 * 60 * MINUTE_MS + 10 * MINUTE_MS)
    assert t.to_state is S.OPEN


def test_windows_below_the_minimum_calls_have_no_verdict() -> None:
    m = Machine(tripping(ERROR_RATE))
    for _ in range(3):
        m.call(failed=True)  # 3 of the 4 calls a verdict needs
    assert m.at(MINUTE_MS) == ()
    for _ in range(3):
        m.call()
    m.call(failed=True)  # 1 of 4 failed: 25 % > 15 %
    (t,) = m.at(2 * MINUTE_MS)
    assert (t.reason, t.evidence.trip_value) == ("trip_condition:error_rate", 0.25)


def test_a_late_call_does_not_count_for_the_current_trip_window() -> None:
    m = Machine(tripping(ERROR_RATE))
    m.at(MINUTE_MS)  # the 00:01 window is current
    outcome = Outcome(failed=True, slow=False)
    for _ in range(4):  # from 00:00:59: the previous window, already gone
        m.feed(Call(T0_MS + MINUTE_MS - 1000, Verdict.FAILURE, outcome))
    assert m.at(2 * MINUTE_MS) == ()


def test_trip_conditions_run_only_while_closed_and_restart_on_transitions() -> None:
    m = Machine(tripping(SUCCESS_RATE))
    m.call(failed=True)
    m.at(10 * MINUTE_MS)  # streak 1
    m.feed(Command(m.now_ms, Override.FORCE_OPEN))
    m.call(failed=True)  # while forced open: not counted anywhere
    m.at(20 * MINUTE_MS)
    m.feed(Command(m.now_ms, Override.RESET))  # back to CLOSED: streaks start from 0
    assert m.state.trips is not None
    assert m.state.trips[0].streak == 0
    m.call(failed=True)
    assert m.at(30 * MINUTE_MS) == ()  # one violation only: no trip
    m.call(failed=True)
    (t,) = m.at(40 * MINUTE_MS)
    assert t.to_state is S.OPEN


def test_latency_from_before_the_breaker_closed_is_not_counted() -> None:
    m = Machine(tripping(P95))
    m.at(MINUTE_MS)
    m.feed(Command(m.now_ms, Override.FORCE_OPEN))
    m.feed(Command(m.now_ms, Override.RESET))  # CLOSED again since 00:01
    m.feed(Latency(m.now_ms - 1, 9000.0))  # measured at 00:00.999: before that
    assert m.state.trips is not None
    sketch = m.state.trips[0].sketch
    assert sketch is not None
    assert sketch.count == 0
    m.latency(9000.0)
    assert sketch.count == 1


def test_first_condition_to_trip_opens_and_restarts_the_others() -> None:
    m = Machine(tripping(SUCCESS_RATE, ERROR_RATE))
    for _ in range(4):
        m.call(failed=True)
    (t,) = m.at(MINUTE_MS)  # the 1-minute error-rate window trips at once
    assert t.reason == "trip_condition:error_rate"
    assert m.state.trips is not None
    assert [tracker.streak for tracker in m.state.trips] == [0, 0]


def test_a_policy_without_trip_conditions_has_no_trackers() -> None:
    assert initial_state(BreakerConfig()).trips is None
    m = Machine(BreakerConfig())
    assert m.latency(10_000) == ()  # a latency event is just time passing
    assert m.state.window.calls == 0


# --- evidence ---


def test_evidence_as_dict_is_json_ready() -> None:
    evidence = Evidence(
        calls=5,
        failed_calls=3,
        slow_calls=0,
        failure_rate_pct=60.0,
        slow_call_rate_pct=0.0,
        cost_usd=Decimal("1E-7"),
        consecutive_failures=3,
        calls_while_open=0,
        trip_value=0.25,
    )
    plain = evidence.as_dict()
    assert plain["cost_usd"] == "0.0000001"  # fixed point, exact
    assert plain["trip_value"] == 0.25
    assert json.loads(json.dumps(plain)) == plain


@pytest.mark.parametrize(("cost", "text"), [(Decimal("-0"), "0"), (Decimal("10.50"), "10.50")])
def test_evidence_cost_spelling(cost: Decimal, text: str) -> None:
    evidence = Evidence(1, 0, 0, -1.0, -1.0, cost, 0, 0)
    assert evidence.as_dict()["cost_usd"] == text


def test_cost_threshold_trips_exactly_with_sub_nano_amounts() -> None:
    config = BreakerConfig(cost_threshold_usd=Decimal("0.000000000003"), sliding_window_size=4)
    m = Machine(config)
    tiny = Outcome(failed=False, slow=False, cost_usd=Decimal("0.000000000001"))  # 1e-12 USD
    for _ in range(3):  # exactly the threshold: not over it
        assert m.feed(Call(m.now_ms, Verdict.SUCCESS, tiny)) == ()
    (t,) = m.feed(Call(m.now_ms, Verdict.SUCCESS, tiny))
    assert (t.reason, t.evidence.cost_usd) == ("cost_threshold", Decimal("4E-12"))


# --- trip conditions against a plain reading of the definition ---

_REFERENCE_THRESHOLDS = {
    # Samples are 10 or 100 ms and rates move in steps of 1/3 or more: every verdict is far
    # from its threshold, so the sketch's 1 % cannot change one.
    TripMetric.LATENCY_P95: st.just(50.0),
    TripMetric.SUCCESS_RATE: st.sampled_from([0.4, 0.9]),
    TripMetric.ERROR_RATE: st.sampled_from([0.1, 0.6]),
}
_conditions = st.sampled_from(list(TripMetric)).flatmap(
    lambda metric: st.builds(
        TripCondition,
        metric=st.just(metric),
        threshold=_REFERENCE_THRESHOLDS[metric],
        consecutive_violations=st.integers(1, 3),
        window_ms=st.sampled_from([1000, 2000]),
        minimum_calls=st.integers(1, 3),
    )
)
_reference_events = st.lists(
    st.tuples(
        st.sampled_from([0, 300, 1000, 2500]),  # event time only moves forward here
        st.sampled_from(["success", "failure", "latency", "clock"]),
        st.sampled_from([10.0, 100.0]),
    ),
    max_size=60,
)


def _reference_first_trip(
    conditions: list[TripCondition], events: list[Event]
) -> tuple[int, str, float] | None:
    """(time, reason, value) of the first trip, by brute force: keep every sample of the
    current window in a list, evaluate a window when an event reaches its end."""
    starts: list[int | None] = [None] * len(conditions)
    samples: list[list[tuple[bool, float]]] = [[] for _ in conditions]
    streaks = [0] * len(conditions)
    for event in events:
        for i, c in enumerate(conditions):
            start = starts[i]
            if start is not None and event.ts_ms < start + c.window_ms:
                continue
            if start is not None and len(samples[i]) >= c.minimum_calls:
                if c.metric is TripMetric.LATENCY_P95:
                    ordered = sorted(ms for _, ms in samples[i])
                    value = ordered[int(0.95 * (len(ordered) - 1))]
                    violated = value > c.threshold
                else:
                    failed = sum(f for f, _ in samples[i]) / len(samples[i])
                    value = 1 - failed if c.metric is TripMetric.SUCCESS_RATE else failed
                    low = c.metric is TripMetric.SUCCESS_RATE
                    violated = value < c.threshold if low else value > c.threshold
                streaks[i] = streaks[i] + 1 if violated else 0
                if streaks[i] >= c.consecutive_violations:
                    return event.ts_ms, f"trip_condition:{c.metric}", value
            starts[i] = event.ts_ms - event.ts_ms % c.window_ms
            samples[i] = []
        for i, c in enumerate(conditions):
            latency = c.metric is TripMetric.LATENCY_P95
            if isinstance(event, Call):
                samples[i].append((event.verdict is Verdict.FAILURE, event.duration_ms))
            elif isinstance(event, Latency) and latency:
                samples[i].append((False, event.latency_ms))
    return None


@given(conditions=st.lists(_conditions, min_size=1, max_size=3), steps=_reference_events)
def test_trip_conditions_match_a_brute_force_reference(
    conditions: list[TripCondition], steps: list[tuple[int, str, float]]
) -> None:
    config = tripping(*conditions)
    events: list[Event] = []
    now = T0_MS
    for advance_ms, kind, ms in steps:
        now += advance_ms
        if kind == "latency":
            events.append(Latency(now, ms))
        elif kind == "clock":
            events.append(Clock(now))
        else:
            failed = kind == "failure"
            outcome = Outcome(failed=failed, slow=False, duration_ms=ms)
            events.append(Call(now, Verdict.FAILURE if failed else Verdict.SUCCESS, outcome))
    state = initial_state(config)
    first: Transition | None = None
    for event in events:
        state, out = step(state, config, event)
        if out:
            first = out[0]
            break
    expected = _reference_first_trip(conditions, events)
    if expected is None:
        assert first is None
    else:
        assert first is not None
        assert (first.at_ms, first.reason) == expected[:2]
        assert first.evidence.trip_value == pytest.approx(expected[2], rel=0.01)
