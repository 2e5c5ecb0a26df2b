"""Breaker kernel: Resilience4j's CircuitBreakerStateMachineTest scenarios (same numbers, same
states), narrative clock-driven tests, classification and config tables, and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ToolInvocation
from schemas.state import CircuitState
from tests.support.breaker_machine import BreakerMachine
from workers.errors import ConfigError
from workers.kernels.breaker import (
    LEGAL_TRANSITIONS,
    BreakerConfig,
    BreakerSnapshot,
    Call,
    Clock,
    Command,
    Event,
    IllegalTransitionError,
    Latency,
    Override,
    Transition,
    TripCondition,
    TripMetric,
    Verdict,
    WindowType,
    _transition,
    classify,
    initial_state,
    published_state,
    step,
)
from workers.kernels.breaker_windows import CountWindow, Outcome

S = CircuitState
# Resilience4j's MockClock in CircuitBreakerStateMachineTest: 2019-01-01T12:00:00Z.
T0_MS = 1_546_344_000_000

# CircuitBreakerStateMachineTest.setUp, in our names.
R4J = BreakerConfig(
    failure_rate_threshold_pct=50,
    permitted_calls_in_half_open=4,
    slow_call_duration_ms=4000,
    slow_call_rate_threshold_pct=50,
    max_wait_in_half_open_ms=1000,
    sliding_window_type=WindowType.TIME,
    sliding_window_size=20,
    minimum_number_of_calls=5,
    wait_in_open_ms=5000,
)


def call(
    ts_ms: int, *, failed: bool, duration_ms: float = 0.0, config: BreakerConfig = R4J
) -> Call:
    outcome = Outcome(
        failed=failed, slow=duration_ms > config.slow_call_duration_ms, duration_ms=duration_ms
    )
    return Call(ts_ms, Verdict.FAILURE if failed else Verdict.SUCCESS, outcome)


class Machine(BreakerMachine):
    """Drives `step` like Resilience4j's tests drive the state machine: one call at a time."""

    def __init__(self, config: BreakerConfig = R4J) -> None:
        super().__init__(config, T0_MS)

    def error(self, duration_ms: float = 0.0) -> tuple[Transition, ...]:
        return self.feed(
            call(self.now_ms, failed=True, duration_ms=duration_ms, config=self.config)
        )

    def success(self, duration_ms: float = 0.0) -> tuple[Transition, ...]:
        return self.feed(
            call(self.now_ms, failed=False, duration_ms=duration_ms, config=self.config)
        )

    def advance(self, ms: int) -> tuple[Transition, ...]:
        self.now_ms += ms
        return self.feed(Clock(self.now_ms))

    def command(self, override: Override) -> tuple[Transition, ...]:
        return self.feed(Command(self.now_ms, override))

    def metrics(self) -> tuple[float, int, int, int, int]:
        """Resilience4j's assertCircuitBreakerMetricsEqualTo: (failure rate, successful,
        buffered, failed, not permitted)."""
        e = self.state.evidence(self.config)
        return (
            e.failure_rate_pct,
            e.calls - e.failed_calls,
            e.calls,
            e.failed_calls,
            e.calls_while_open,
        )

    def open_with_five_errors(self) -> None:
        for _ in range(5):
            self.error()
        assert self.state.state is S.OPEN

    def half_open(self) -> None:
        self.open_with_five_errors()
        self.wait_out_open()


# --- CircuitBreakerStateMachineTest ---


def test_should_open_after_failure_rate_threshold_exceeded() -> None:
    m = Machine()
    assert m.state.state is S.CLOSED
    assert m.metrics() == (-1, 0, 0, 0, 0)
    # Calls 1-3 fail: below the minimum of 5 calls the rate is -1 and nothing happens.
    for n in (1, 2, 3):
        assert m.error() == ()
        assert m.state.state is S.CLOSED
        assert m.metrics() == (-1, 0, n, n, 0)
    # Call 4 succeeds.
    assert m.success() == ()
    assert m.metrics() == (-1, 1, 4, 3, 0)
    # Call 5 succeeds; 5 calls, 3 failed: 60 % >= 50 %, the breaker opens.
    (opened,) = m.success()
    assert (opened.from_state, opened.to_state, opened.reason) == (
        S.CLOSED,
        S.OPEN,
        "failure_rate_above_threshold",
    )
    assert (opened.evidence.calls, opened.evidence.failed_calls) == (5, 3)
    assert opened.evidence.failure_rate_pct == 60
    assert m.metrics() == (60, 2, 5, 3, 0)
    # A call while open is counted as not permitted and leaves the window alone.
    assert m.error() == ()
    assert m.metrics() == (60, 2, 5, 3, 1)


def test_should_open_after_slow_call_rate_threshold_exceeded() -> None:
    m = Machine()
    m.error(duration_ms=5000)  # call 1: slow failure
    m.success(duration_ms=5000)  # call 2: slow
    m.error(duration_ms=100)  # call 3: fast failure
    m.success(duration_ms=100)  # call 4: fast
    assert m.state.state is S.CLOSED
    (opened,) = m.success(duration_ms=5000)  # call 5: slow; 3 of 5 slow = 60 % >= 50 %
    assert opened.reason == "slow_call_rate_above_threshold"
    assert (opened.evidence.calls, opened.evidence.slow_calls) == (5, 3)
    assert opened.evidence.slow_call_rate_pct == 60
    assert opened.evidence.failure_rate_pct == 40


def test_should_open_after_failure_rate_threshold_exceeded_2() -> None:
    m = Machine()  # 20 s time window, minimum 5 calls
    for _ in range(3):  # seconds 0, 1, 2: successes
        m.success()
        m.now_ms += 1000
    m.error()  # second 3
    m.now_ms += 1000
    m.error()  # second 4: 2 of 5 failed, 40 %
    assert m.state.state is S.CLOSED
    m.now_ms += 1000
    assert m.advance(0) == ()  # time alone changes nothing in CLOSED
    (t,) = m.error()  # second 5: 3 of 6 failed, 50 % >= 50 %
    assert (t.to_state, t.evidence.calls, t.evidence.failure_rate_pct) == (S.OPEN, 6, 50)


def test_should_open_after_slow_call_rate_threshold_exceeded_using_mock_clock() -> None:
    m = Machine()
    # Each call takes as long as the clock advances; it is recorded when it ends.
    for seconds, buffered, slow in [(5, 1, 1), (5, 2, 2), (1, 3, 2), (1, 4, 2)]:
        m.now_ms += seconds * 1000
        assert m.success(duration_ms=seconds * 1000) == ()
        snap = m.state.window.snapshot()
        assert (snap.total_calls, snap.slow_calls) == (buffered, slow)
    m.now_ms += 5000
    (t,) = m.success(duration_ms=5000)  # call 5 is slow: 3 of 5, 60 %
    assert (t.to_state, t.evidence.calls, t.evidence.slow_calls) == (S.OPEN, 5, 3)
    assert t.evidence.slow_call_rate_pct == 60


def test_should_transition_to_half_open_after_wait_interval() -> None:
    # IntervalFunction.ofExponentialBackoff(5000): multiplier 1.5.
    config = BreakerConfig(
        sliding_window_size=5,
        minimum_number_of_calls=5,
        permitted_calls_in_half_open=4,
        wait_in_open_ms=5000,
        backoff_multiplier=1.5,
    )
    m = Machine(config)
    m.open_with_five_errors()
    m.now_ms += 3000
    assert m.error() == ()  # 3 s: the 5 s wait has not elapsed
    m.now_ms += 3000
    (t,) = m.success()  # 6 s: half-open
    assert t.to_state is S.HALF_OPEN
    for _ in range(3):
        m.error()  # the trial fails: open again, the wait is now 7.5 s
    assert (m.state.state, m.state.retry_at_ms) == (S.OPEN, m.now_ms + 7500)
    assert m.advance(6000) == ()  # 6 s: still open
    (t,) = m.advance(5000)  # 11 s: half-open
    assert t.to_state is S.HALF_OPEN
    assert m.metrics() == (-1, 0, 0, 0, 0)


def test_should_transition_to_half_open_after_wait_duration() -> None:
    m = Machine()
    m.open_with_five_errors()
    assert m.error() == ()  # not permitted
    # 3 s later: the 5 s wait has not elapsed.
    m.now_ms += 3000
    assert m.error() == ()
    assert m.state.state is S.OPEN
    assert m.state.calls_while_open == 2
    # 6 s after opening: past the wait; this call moves the breaker to HALF_OPEN first and is
    # then the first trial call, in a fresh window.
    m.now_ms += 3000
    (half_open,) = m.success()
    assert (half_open.from_state, half_open.to_state, half_open.reason) == (
        S.OPEN,
        S.HALF_OPEN,
        "wait_elapsed",
    )
    assert half_open.evidence.calls_while_open == 2
    assert m.metrics() == (-1, 1, 1, 0, 0)


def test_open_to_half_open_is_strictly_after_the_wait() -> None:
    m = Machine()
    m.open_with_five_errors()
    retry_at = m.state.retry_at_ms
    assert retry_at == T0_MS + 5000
    assert m.advance(5000) == ()  # exactly at retry_at: still open
    assert m.state.state is S.OPEN
    (t,) = m.advance(1)  # 1 ms past: half-open, with no traffic at all
    assert (t.to_state, t.at_ms) == (S.HALF_OPEN, retry_at + 1)


def test_should_transition_back_to_open_when_failure_rate_is_above_threshold() -> None:
    m = Machine()
    m.half_open()
    assert m.metrics() == (-1, 0, 0, 0, 0)
    m.error()  # call 1 fails
    m.error()  # call 2 fails
    m.success()  # call 3 succeeds
    (reopened,) = m.error()  # call 4 fails: the 4 permitted calls decided, 75 % >= 50 %
    assert (reopened.from_state, reopened.to_state) == (S.HALF_OPEN, S.OPEN)
    assert reopened.evidence.failure_rate_pct == 75
    assert (reopened.evidence.calls, reopened.evidence.failed_calls) == (4, 3)
    assert reopened.attempt == 2


def test_should_transition_back_to_open_when_slow_call_rate_is_above_threshold() -> None:
    m = Machine()
    m.half_open()
    for _ in range(3):
        m.success(duration_ms=5000)  # calls 1-3 are slow
    (reopened,) = m.success(duration_ms=1000)  # call 4 is fast
    assert reopened.to_state is S.OPEN
    assert reopened.evidence.slow_calls == 3
    assert reopened.evidence.slow_call_rate_pct == 75
    assert reopened.evidence.failure_rate_pct == 0


def test_should_transition_back_to_closed_when_failure_is_below_threshold() -> None:
    m = Machine()
    m.half_open()
    m.error()  # call 1 fails
    m.success()
    m.success()
    (closed,) = m.success()  # call 4: 25 % < 50 %, the breaker closes
    assert (closed.from_state, closed.to_state, closed.reason) == (
        S.HALF_OPEN,
        S.CLOSED,
        "below_thresholds",
    )
    assert closed.attempt == 0
    assert m.metrics() == (-1, 0, 0, 0, 0)  # a fresh closed window
    m.success()  # call 5 goes into the closed window
    assert m.metrics() == (-1, 1, 1, 0, 0)


def test_should_reset_metrics() -> None:
    m = Machine()
    m.success()
    m.error()
    assert m.metrics() == (-1, 1, 2, 1, 0)
    assert m.command(Override.RESET) == ()  # closed -> closed publishes nothing
    assert m.metrics() == (-1, 0, 0, 0, 0)


def test_should_disable_circuit_breaker() -> None:
    m = Machine()
    (t,) = m.command(Override.DISABLE)
    assert (t.from_state, t.to_state) == (S.CLOSED, S.DISABLED)
    for _ in range(5):
        assert m.error() == ()
    assert m.state.state is S.DISABLED


def test_should_force_open_circuit_breaker() -> None:
    m = Machine()
    (t,) = m.command(Override.FORCE_OPEN)
    assert (t.to_state, t.retry_at_ms) == (S.FORCED_OPEN, None)
    m.success()
    assert m.state.calls_while_open == 1
    assert m.advance(3_600_000) == ()  # forced open never times out
    assert m.state.state is S.FORCED_OPEN


def test_should_ignore_excluded_errors_and_then_transition_to_closed() -> None:
    m = Machine()
    m.half_open()
    m.feed(classify(invocation(m.now_ms, "error", "400"), R4J))  # ignored, like NumberFormat
    assert m.metrics() == (-1, 0, 0, 0, 0)
    assert m.state.ignored_calls == 1
    for _ in range(3):
        m.success()
    (closed,) = m.success()
    assert closed.to_state is S.CLOSED


def test_should_not_allow_transition_from_closed_to_half_open() -> None:
    assert (S.CLOSED, S.HALF_OPEN) not in LEGAL_TRANSITIONS
    with pytest.raises(IllegalTransitionError, match="closed -> half_open"):
        _transition(initial_state(R4J), R4J, S.HALF_OPEN, T0_MS, "test", [])


_LEGAL = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
    *(
        (a, b)
        for a in ("closed", "open", "half_open")
        for b in ("forced_open", "disabled", "metrics_only")
    ),
    ("forced_open", "disabled"),
    ("forced_open", "metrics_only"),
    ("disabled", "forced_open"),
    ("disabled", "metrics_only"),
    ("metrics_only", "forced_open"),
    ("metrics_only", "disabled"),
    ("forced_open", "closed"),  # reset
    ("disabled", "closed"),
    ("metrics_only", "closed"),
    ("open", "closed"),
}


@pytest.mark.parametrize("src", list(S))
@pytest.mark.parametrize("dst", list(S))
def test_transition_table(src: CircuitState, dst: CircuitState) -> None:
    legal = (src.value, dst.value) in _LEGAL
    assert ((src, dst) in LEGAL_TRANSITIONS) is legal
    state = BreakerSnapshot(window=R4J.new_window(), state=src)
    if legal:
        new = _transition(state, R4J, dst, T0_MS, "test", [])
        assert new.state is dst
    else:
        with pytest.raises(IllegalTransitionError):
            _transition(state, R4J, dst, T0_MS, "test", [])


def test_should_reset_to_closed_state_from_open() -> None:
    m = Machine()
    m.open_with_five_errors()
    (t,) = m.command(Override.RESET)
    assert (t.from_state, t.to_state, t.reason) == (S.OPEN, S.CLOSED, "override:reset")
    assert m.state.attempt == 0


def test_should_record_metrics_in_metrics_only_state() -> None:
    m = Machine()
    m.command(Override.METRICS_ONLY)
    for _ in range(5):
        assert m.error() == ()  # 100 % failures, no transition
    assert m.state.state is S.METRICS_ONLY
    assert m.metrics() == (100, 0, 5, 5, 0)


def test_all_states_allow_transition_to_metrics_only() -> None:
    for src in S:
        assert src is S.METRICS_ONLY or (src, S.METRICS_ONLY) in LEGAL_TRANSITIONS


def test_half_open_reopens_strictly_after_max_wait() -> None:
    m = Machine()
    m.half_open()
    m.success()  # one of 4 trial calls: undecided
    assert m.advance(1000) == ()  # exactly the 1 s max wait: still half-open
    (t,) = m.advance(1)
    assert (t.to_state, t.reason) == (S.OPEN, "max_wait_in_half_open_elapsed")


# --- narratives: time comes only from the events ---

SEED = BreakerConfig(
    policy_id="cb.vendor.default",
    sliding_window_size=10,
    minimum_number_of_calls=5,
    failure_threshold=5,
    wait_in_open_ms=60_000,
    backoff_multiplier=2,
    max_wait_in_open_ms=180_000,
    permitted_calls_in_half_open=3,
    error_types=frozenset({"timeout", "500", "503", "rate_limit"}),
    fallback_action="use_cache",
)


def test_narrative_backoff_doubles_until_the_breaker_closes() -> None:
    m = Machine(SEED)
    # 00:00 - four 503s then a success: 4/5 = 80 % >= 50 %, opens (attempt 1, wait 60 s).
    for _ in range(4):
        m.error()
    (t,) = m.success()
    assert (t.to_state, t.attempt, t.retry_at_ms, t.fallback_action) == (
        S.OPEN,
        1,
        T0_MS + 60_000,
        "use_cache",
    )
    # 01:00.001 - a clock event, no traffic: half-open.
    assert [x.to_state for x in m.advance(60_001)] == [S.HALF_OPEN]
    # Three trial calls, two fail: 67 % -> open again, attempt 2 waits 120 s.
    m.error()
    m.error()
    (t,) = m.success()
    assert (t.to_state, t.attempt, t.retry_at_ms) == (S.OPEN, 2, m.now_ms + 120_000)
    # 02:00 later - not yet (the wait doubled).
    assert m.advance(60_000) == ()
    # 03:00.001 later - half-open; the trial fails all three: attempt 3 is capped at 180 s.
    assert [x.to_state for x in m.advance(60_001)] == [S.HALF_OPEN]
    for _ in range(3):
        out = m.error()
    assert (out[0].attempt, out[0].retry_at_ms) == (3, m.now_ms + 180_000)
    # After the capped wait: half-open, three successes close it and reset the attempts.
    m.advance(180_001)
    for _ in range(3):
        out = m.success()
    assert (out[0].to_state, out[0].attempt) == (S.CLOSED, 0)
    assert [(x.from_state, x.to_state) for x in m.transitions] == [
        (S.CLOSED, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.CLOSED),
    ]


def test_narrative_consecutive_failures_trip_before_the_minimum() -> None:
    config = BreakerConfig(minimum_number_of_calls=100, failure_threshold=3)
    m = Machine(config)
    m.error()
    m.error()
    m.success()  # the run of failures restarts
    m.error()
    m.error()
    assert m.state.state is S.CLOSED
    (t,) = m.error()  # third in a row, with 6 calls: far below the 100-call minimum
    assert (t.reason, t.evidence.consecutive_failures, t.evidence.failure_rate_pct) == (
        "consecutive_failures",
        3,
        -1,
    )


def test_narrative_cost_threshold_over_the_window() -> None:
    config = BreakerConfig(cost_threshold_usd=Decimal(10), sliding_window_size=4)
    m = Machine(config)
    cheap = Outcome(failed=False, slow=False, cost_usd=Decimal("3.00"))
    for _ in range(3):  # $9.00 in the window: not over $10
        assert m.feed(Call(m.now_ms, Verdict.SUCCESS, cheap)) == ()
    pricey = Outcome(failed=False, slow=False, cost_usd=Decimal("1.01"))
    (t,) = m.feed(Call(m.now_ms, Verdict.SUCCESS, pricey))  # $10.01 > $10
    assert (t.reason, t.evidence.cost_usd) == ("cost_threshold", Decimal("10.01"))


def test_narrative_time_window_forgets_old_failures_and_counts_late_ones() -> None:
    config = BreakerConfig(
        sliding_window_type=WindowType.TIME,
        sliding_window_size=60,
        minimum_number_of_calls=5,
        allowed_lateness_ms=2000,
    )
    m = Machine(config)
    for _ in range(4):  # 00:00 - four failures, one short of the minimum
        m.error()
    m.advance(60_000)  # 01:00 - a clock event slides the failures out of the window
    assert m.state.window.snapshot().total_calls == 0
    m.success()
    # A failure 3 s late is beyond the 2 s lateness: counted as late, not in the window.
    assert m.feed(call(m.now_ms - 3000, failed=True, config=config)) == ()
    assert (m.state.late_calls, m.state.window.snapshot().total_calls) == (1, 1)


def test_narrative_rate_limit_retry_after_opens_until_that_instant() -> None:
    m = Machine(SEED)
    # 00:00 - one rate-limited call, the vendor says retry after 30 s: open until then, not
    # for the 60 s backoff and without waiting for the minimum number of calls.
    limited = classify(invocation(m.now_ms, "error", "rate_limit"), SEED, retry_after_ms=30_000)
    (t,) = m.feed(limited)
    assert (t.to_state, t.reason, t.retry_at_ms) == (
        S.OPEN,
        "rate_limit_retry_after",
        T0_MS + 30_000,
    )
    assert m.advance(30_000) == ()  # exactly at the instant: still open
    (t,) = m.advance(1)  # strictly after: half-open
    assert t.to_state is S.HALF_OPEN


def test_retry_after_shorter_than_the_backoff_does_not_shorten_a_rate_trip() -> None:
    m = Machine(SEED)
    for _ in range(4):
        m.error()
    limited = classify(invocation(m.now_ms, "error", "rate_limit"), SEED, retry_after_ms=1000)
    (t,) = m.feed(limited)  # 5 of 5 failed: the rate trips; the 60 s backoff is the later
    assert (t.reason, t.retry_at_ms) == ("failure_rate_above_threshold", T0_MS + 60_000)


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [("error", "rate_limit", T0_MS + 1500), ("error", "503", None), ("success", None, None)],
)
def test_only_rate_limit_failures_carry_retry_after(
    status: str, error_type: str | None, expected: int | None
) -> None:
    result = classify(invocation(T0_MS, status, error_type), SEED, retry_after_ms=1499.2)
    assert result.retry_at_ms == expected


def test_narrative_a_call_from_before_half_open_is_not_a_trial_call() -> None:
    m = Machine()
    m.half_open()  # since = T0 + 5001 ms
    # A failure made 10 ms before the breaker went half-open arrives now: late, not a trial.
    assert m.feed(call(m.now_ms - 10, failed=True)) == ()
    assert (m.state.late_calls, m.state.window.snapshot().total_calls) == (1, 0)


def test_published_state_after_opening() -> None:
    m = Machine(SEED)
    for _ in range(5):
        m.error()
    published = published_state(
        m.state, SEED, key="openai/chat", policy_version="a" * 64, updated_at_ms=m.now_ms
    )
    assert published.state is S.OPEN
    assert published.retry_at == datetime(2019, 1, 1, 12, 1, tzinfo=UTC)
    assert (published.failure_rate, published.calls_in_window, published.attempt) == (1.0, 5, 1)
    assert (published.reason, published.fallback_action) == (
        "failure_rate_above_threshold",
        "use_cache",
    )
    assert published.policy_id == "cb.vendor.default"


def test_published_state_reports_zero_rates_below_the_minimum() -> None:
    m = Machine(SEED)
    m.error()
    published = published_state(
        m.state, SEED, key="openai/chat", policy_version="a" * 64, updated_at_ms=m.now_ms
    )
    assert (published.state, published.failure_rate, published.calls_in_window) == (
        S.CLOSED,
        0.0,
        1,
    )
    assert published.since == published.updated_at


# --- classification ---


def invocation(
    ts_ms: int, status: str, error_type: str | None = None, duration_ms: float = 10
) -> ToolInvocation:
    return ToolInvocation(
        event_id="e1",
        ts=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms),
        vendor="openai",
        tool="chat",
        status=status,
        error_type=error_type,
        duration_ms=duration_ms,
        cost_usd=Decimal("0.25"),
    )


@pytest.mark.parametrize(
    ("status", "error_type", "verdict"),
    [
        ("success", None, Verdict.SUCCESS),
        ("rejected", None, Verdict.IGNORED),
        ("timeout", None, Verdict.FAILURE),  # a timeout's type defaults to "timeout"
        ("error", "503", Verdict.FAILURE),
        ("error", "rate_limit", Verdict.FAILURE),
        ("error", "400", Verdict.IGNORED),
        ("error", "401", Verdict.IGNORED),
        ("error", "502", Verdict.SUCCESS),  # not in error_types: a success (Resilience4j)
        ("error", None, Verdict.SUCCESS),
    ],
)
def test_classify_with_seed_error_types(
    status: str, error_type: str | None, verdict: Verdict
) -> None:
    result = classify(invocation(T0_MS, status, error_type), SEED)
    assert result.verdict is verdict
    assert result.outcome.failed is (verdict is Verdict.FAILURE)
    assert result.ts_ms == T0_MS
    assert result.outcome.cost_usd == Decimal("0.25")


def test_classify_without_error_types_fails_every_counted_error() -> None:
    assert classify(invocation(T0_MS, "error", "502"), BreakerConfig()).verdict is Verdict.FAILURE
    assert classify(invocation(T0_MS, "error", None), BreakerConfig()).verdict is Verdict.FAILURE


@pytest.mark.parametrize(("duration_ms", "slow"), [(4000, False), (4000.5, True)])
def test_slow_means_strictly_longer(duration_ms: float, slow: bool) -> None:
    assert classify(invocation(T0_MS, "success", duration_ms=duration_ms), R4J).outcome.slow is slow


# --- config ---


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_rate_threshold_pct": 0}, "failure_rate_threshold_pct .* not 0"),
        ({"slow_call_rate_threshold_pct": 101}, "slow_call_rate_threshold_pct .* not 101"),
        ({"sliding_window_size": 0}, "sliding_window_size .* not 0"),
        ({"minimum_number_of_calls": -3}, "minimum_number_of_calls .* not -3"),
        ({"wait_in_open_ms": 1.5}, "wait_in_open_ms .* not 1.5"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier .* not 0.5"),
        ({"max_wait_in_open_ms": 10}, "max_wait_in_open_ms .*60000.* not 10"),
        ({"cost_threshold_usd": Decimal(-1)}, "cost_threshold_usd .* not Decimal"),
        ({"failure_threshold": -1}, "failure_threshold .* not -1"),
        (
            {"sliding_window_type": WindowType.TIME, "sliding_window_size": 7, "time_bucket_s": 2},
            "sliding_window_size .* not 7",
        ),
    ],
)
def test_bad_config_names_the_field_and_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_are_resilience4j_and_seed_values() -> None:
    c = BreakerConfig()
    assert (c.failure_rate_threshold_pct, c.slow_call_rate_threshold_pct) == (50, 100)
    assert (c.slow_call_duration_ms, c.sliding_window_size, c.minimum_number_of_calls) == (
        60_000,
        100,
        100,
    )
    assert (c.permitted_calls_in_half_open, c.wait_in_open_ms, c.max_wait_in_half_open_ms) == (
        10,
        60_000,
        0,
    )
    assert c.exclude_errors == {"400", "401", "403"}


# --- properties ---

_THRESHOLDS = {
    TripMetric.LATENCY_P95: st.sampled_from([5.0, 50.0]),  # the calls take 0-100 ms
    TripMetric.SUCCESS_RATE: st.sampled_from([0.5, 0.9]),
    TripMetric.ERROR_RATE: st.sampled_from([0.1, 0.5]),
}
_trip_conditions = st.sampled_from(list(TripMetric)).flatmap(
    lambda metric: st.builds(
        TripCondition,
        metric=st.just(metric),
        threshold=_THRESHOLDS[metric],
        consecutive_violations=st.integers(1, 3),
        window_ms=st.sampled_from([1000, 5000]),
        minimum_calls=st.integers(1, 3),
    )
)


@st.composite
def _configs(draw: st.DrawFn) -> BreakerConfig:
    permitted = draw(st.integers(1, 4))
    return BreakerConfig(
        sliding_window_type=draw(st.sampled_from(list(WindowType))),
        sliding_window_size=draw(st.integers(1, 6)),
        minimum_number_of_calls=draw(st.integers(1, 6)),
        permitted_calls_in_half_open=permitted,
        wait_in_open_ms=draw(st.integers(1, 5000)),
        backoff_multiplier=draw(st.sampled_from([1.0, 2.0])),
        max_wait_in_half_open_ms=draw(st.sampled_from([0, 3000])),
        failure_threshold=draw(st.integers(0, 4)),
        allowed_lateness_ms=draw(st.integers(0, 3000)),
        cost_threshold_usd=draw(st.sampled_from([None, Decimal(5), Decimal("2.0000000001")])),
        # Half the time the seeds' half-open thresholds, half the time Resilience4j's rates.
        success_threshold=draw(st.integers(0, permitted)),
        consecutive_success_threshold=draw(st.integers(0, permitted)),
        trip_conditions=tuple(draw(st.lists(_trip_conditions, max_size=2))),
    )


_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("call"),
            st.integers(-2000, 3000),
            st.sampled_from(list(Verdict)),
            st.booleans(),
            st.integers(0, 3),
            st.booleans(),
        ),
        st.tuples(st.just("clock"), st.integers(0, 10_000)),
        st.tuples(st.just("latency"), st.integers(0, 3000), st.integers(0, 100)),
        st.tuples(st.just("command"), st.sampled_from(list(Override))),
    ),
    max_size=60,
)


def _events(steps: list[tuple[object, ...]]) -> list[Event]:
    events: list[Event] = []
    now = T0_MS
    for kind, *args in steps:
        if kind == "call":
            delta, verdict, slow, cost, limited = args
            assert isinstance(delta, int)
            assert isinstance(verdict, Verdict)
            assert isinstance(cost, int)
            outcome = Outcome(
                failed=verdict is Verdict.FAILURE,
                slow=bool(slow),
                duration_ms=cost * 30.0,  # 0-90 ms: around the latency thresholds above
                cost_usd=Decimal(str(cost)),
            )
            retry_at_ms = now + delta + 1500 if limited else None
            events.append(Call(now + delta, verdict, outcome, retry_at_ms))
            now = max(now, now + delta)
        elif kind == "clock":
            assert isinstance(args[0], int)
            now += args[0]
            events.append(Clock(now))
        elif kind == "latency":
            advance_ms, latency_ms = args
            assert isinstance(advance_ms, int)
            assert isinstance(latency_ms, int)
            now += advance_ms
            events.append(Latency(now, float(latency_ms)))
        else:
            assert isinstance(args[0], Override)
            events.append(Command(now, args[0]))
    return events


def _run(config: BreakerConfig, events: list[Event]) -> tuple[BreakerSnapshot, list[Transition]]:
    state = initial_state(config)
    outputs: list[Transition] = []
    for event in events:
        state, out = step(state, config, event)
        outputs.extend(out)
    return state, outputs


@given(config=_configs(), steps=_steps)
def test_only_legal_transitions_in_an_unbroken_chain(
    config: BreakerConfig, steps: list[tuple[object, ...]]
) -> None:
    _, outputs = _run(config, _events(steps))
    current = S.CLOSED
    for t in outputs:
        assert (t.from_state, t.to_state) in LEGAL_TRANSITIONS
        assert t.from_state is current  # no gap, no self-transition
        current = t.to_state


_REASONS = {
    "failure_rate_above_threshold",
    "slow_call_rate_above_threshold",
    "above_thresholds",
    "below_thresholds",
    "consecutive_failures",
    "cost_threshold",
    "rate_limit_retry_after",
    "wait_elapsed",
    "max_wait_in_half_open_elapsed",
    "success_threshold_reached",
    "success_threshold_unreachable",
    *(f"override:{o.name.lower()}" for o in Override),
}


@given(config=_configs(), steps=_steps)
def test_reasons_are_known_and_trip_conditions_open_only_a_closed_breaker(
    config: BreakerConfig, steps: list[tuple[object, ...]]
) -> None:
    _, outputs = _run(config, _events(steps))
    for t in outputs:
        if t.reason.startswith("trip_condition:"):
            assert (t.from_state, t.to_state) == (S.CLOSED, S.OPEN)
            assert t.evidence.trip_value is not None
        else:
            assert t.reason in _REASONS
            assert t.evidence.trip_value is None
        if t.reason.startswith("success_threshold"):
            assert config.seed_half_open
            assert t.from_state is S.HALF_OPEN


@given(config=_configs(), steps=_steps)
def test_same_input_gives_identical_output(
    config: BreakerConfig, steps: list[tuple[object, ...]]
) -> None:
    events = _events(steps)
    first_state, first = _run(config, events)
    second_state, second = _run(config, events)
    assert first == second
    assert first_state.window.snapshot() == second_state.window.snapshot()


@given(config=_configs(), steps=_steps)
def test_stepping_a_copy_never_changes_the_original(
    config: BreakerConfig, steps: list[tuple[object, ...]]
) -> None:
    # `step` updates the state it is given (the caller owns it); `copy()` is how a caller
    # keeps the state before a step. Both must then evolve identically and independently.
    state = initial_state(config)
    for event in _events(steps):
        before = state.copy()
        kept = state.copy()
        assert kept == state
        new, out = step(state, config, event)
        assert new is state  # updated in place
        assert kept == before  # the copy did not move with it
        again, out_again = step(kept, config, event)
        assert (again, out_again) == (new, out)  # and the copy steps to the same place


@given(config=_configs(), steps=_steps)
def test_window_totals_equal_a_recount_of_its_slots(
    config: BreakerConfig, steps: list[tuple[object, ...]]
) -> None:
    # Whatever the state machine did with it, a count window's running totals (updated in
    # place, subtract-on-evict) equal a recount of the flags it holds.
    config = replace(config, sliding_window_type=WindowType.COUNT)
    state = initial_state(config)
    for event in _events(steps):
        state, _ = step(state, config, event)
        window = state.window
        assert isinstance(window, CountWindow)
        flags = window._flags[: window.calls]  # full or filled from slot 0
        assert window.calls == (window.size if window.calls == window.size else len(flags))
        assert window.failed_calls == sum(f & 1 for f in flags)
        assert window.slow_calls == sum(f >> 1 & 1 for f in flags)
        assert window.slow_failed_calls == sum(f == 3 for f in flags)
        if window.cost is not None:
            assert window.cost.ints.total == sum(window.cost.ints.slots)
