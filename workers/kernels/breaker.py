"""Circuit-breaker kernel (DESIGN §6, issue 3): `step(state, config, event) -> (state, outputs)`.

Resilience4j's three layers:
- windows (`workers.kernels.breaker_windows`) hold the outcomes, with running totals;
- the policy (`evaluate`) turns the totals into a `Result` (CircuitBreakerMetrics' rules);
- `step` is the state machine; the legal transitions are `LEGAL_TRANSITIONS`, anything else
  raises `IllegalTransitionError`. Self-transitions publish nothing.

Pure: no clock, no I/O, no randomness; the same events give the same states and outputs. Time
is `ts_ms` on every event (event time); a `Clock` event moves time with no traffic, so
OPEN -> HALF_OPEN happens with the first event of any kind whose `ts_ms` is strictly after
`retry_at_ms`.

The caller owns the state: `step` updates the `BreakerSnapshot` it is given in place and
returns it (allocating a new state per call was most of the cost of a step). Keep
`state.copy()` when the state before a step is still needed; stepping a copy never changes
the original.

Beyond Resilience4j: the seeds' consecutive-failure trigger (`failure_threshold`), error types
counted / excluded, a cost threshold over the window (closed state), `fallback_action`,
event-time lateness, and a `rate_limit` failure carrying a retry-after opens the breaker until
that instant (or the backoff, if the rates tripped too, whichever is later).

HALF_OPEN is decided one of two ways:
- Resilience4j (`success_threshold == consecutive_success_threshold == 0`): once
  `min(minimum_number_of_calls, permitted_calls_in_half_open)` trial calls were recorded, the
  failure and slow-call rates of the trial calls decide: a rate >= its threshold reopens,
  both below close.
- The seeds' (either threshold > 0): with n trial calls recorded so far, s of them successes
  and r the current run of consecutive successes, after each trial call
  `need = max(success_threshold - s, consecutive_success_threshold - r)`;
  `need <= 0` closes ("success_threshold_reached"); `need > permitted_calls_in_half_open - n`
  reopens ("success_threshold_unreachable"): even all-successes from here cannot close within
  the permitted calls (this includes n reaching the permitted calls without closing). Rates do
  not count here; slow successes are successes.
In both, a rate-limit failure with a retry-after reopens at once, and a `max_wait_in_half_open_ms`
elapsing reopens.

Trip conditions (`workers.kernels.breaker_trips`, RESONTINEX): evaluated on tumbling event-time
windows while CLOSED only; a streak reaching `consecutive_violations` opens the breaker with
reason `trip_condition:<name or metric>` and the metric value in `Evidence.trip_value`. Every
transition (and a reset) restarts them. A policy without trip conditions never touches them.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.state import BreakerState, CircuitState
from schemas.types import from_epoch_ms
from workers.errors import GuardstreamError
from workers.kernels.breaker_config import (
    RETRY_AFTER_REASON,
    BreakerConfig,
    TripCondition,
    TripMetric,
    WindowType,
)
from workers.kernels.breaker_events import (
    Call,
    Clock,
    Command,
    Event,
    Latency,
    Override,
    Verdict,
    classify,
    observe_latency,
)
from workers.kernels.breaker_state import BreakerSnapshot, Evidence, Transition, rate_pct
from workers.kernels.breaker_trips import new_trackers
from workers.kernels.breaker_windows import CountWindow, Window, WindowSnapshot

__all__ = [
    "LEGAL_TRANSITIONS",
    "BreakerConfig",
    "BreakerSnapshot",
    "Call",
    "Clock",
    "Command",
    "Event",
    "Evidence",
    "IllegalTransitionError",
    "Latency",
    "Override",
    "Transition",
    "TripCondition",
    "TripMetric",
    "Verdict",
    "WindowType",
    "classify",
    "initial_state",
    "observe_latency",
    "published_state",
    "rate_pct",
    "state_record",
    "step",
]

# Enum members as module constants: on 3.11 `CircuitState.CLOSED` is a slow class lookup.
_CLOSED, _OPEN, _HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_FORCED_OPEN, _DISABLED = CircuitState.FORCED_OPEN, CircuitState.DISABLED
_METRICS_ONLY = CircuitState.METRICS_ONLY

# Every transition the machine may make, written down once (Resilience4j's StateTransition,
# minus the self-transitions, which publish nothing and are never checked here).
_OVERRIDES = (_FORCED_OPEN, _DISABLED, _METRICS_ONLY)
LEGAL_TRANSITIONS: frozenset[tuple[CircuitState, CircuitState]] = frozenset(
    {
        (_CLOSED, _OPEN),
        (_OPEN, _HALF_OPEN),
        (_HALF_OPEN, _CLOSED),
        (_HALF_OPEN, _OPEN),
        *((src, dst) for src in CircuitState for dst in _OVERRIDES if src != dst),
        *((src, _CLOSED) for src in (*_OVERRIDES, _OPEN)),  # reset (HALF_OPEN's is above)
    }
)

_IGNORED = Verdict.IGNORED
_FAILURE = Verdict.FAILURE


class IllegalTransitionError(GuardstreamError):
    """A transition not in LEGAL_TRANSITIONS was attempted (a kernel bug, never input)."""

    def __init__(self, from_state: CircuitState, to_state: CircuitState) -> None:
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"illegal breaker transition {from_state} -> {to_state}")


class Result(StrEnum):
    """What the policy makes of a window (Resilience4j's CircuitBreakerMetrics.Result)."""

    BELOW_MINIMUM_CALLS = "below_minimum_calls"
    BELOW_THRESHOLDS = "below_thresholds"
    FAILURE_RATE_ABOVE_THRESHOLD = "failure_rate_above_threshold"
    SLOW_CALL_RATE_ABOVE_THRESHOLD = "slow_call_rate_above_threshold"
    ABOVE_THRESHOLDS = "above_thresholds"


_BELOW_THRESHOLDS = Result.BELOW_THRESHOLDS
_ABOVE_THRESHOLDS = str(Result.ABOVE_THRESHOLDS)
_FAILURE_RATE_ABOVE = str(Result.FAILURE_RATE_ABOVE_THRESHOLD)
_SLOW_CALL_RATE_ABOVE = str(Result.SLOW_CALL_RATE_ABOVE_THRESHOLD)


# --- policy ---


def evaluate_counts(
    calls: int, failed_calls: int, slow_calls: int, minimum_calls: int, config: BreakerConfig
) -> Result:
    """Resilience4j's checkIfThresholdsExceeded: rates count from `minimum_calls` on, and a
    threshold trips when the rate is >= it (rates computed as Resilience4j does, in percent)."""
    if calls == 0 or calls < minimum_calls:
        return Result.BELOW_MINIMUM_CALLS
    failing = failed_calls * 100.0 / calls >= config.failure_rate_threshold_pct
    slow = slow_calls * 100.0 / calls >= config.slow_call_rate_threshold_pct
    if failing:
        return Result.ABOVE_THRESHOLDS if slow else Result.FAILURE_RATE_ABOVE_THRESHOLD
    return Result.SLOW_CALL_RATE_ABOVE_THRESHOLD if slow else _BELOW_THRESHOLDS


def evaluate(snapshot: WindowSnapshot, minimum_calls: int, config: BreakerConfig) -> Result:
    """`evaluate_counts` of a window snapshot."""
    return evaluate_counts(
        snapshot.total_calls, snapshot.failed_calls, snapshot.slow_calls, minimum_calls, config
    )


def initial_state(config: BreakerConfig) -> BreakerSnapshot:
    return BreakerSnapshot(window=config.new_window(), trips=new_trackers(config.trip_conditions))


def published_state(
    state: BreakerSnapshot,
    config: BreakerConfig,
    *,
    key: str,
    policy_version: str,
    updated_at_ms: int,
) -> BreakerState:
    """The `breaker-state` record gateways read (rates as fractions, 0 below the minimum)."""
    return state_record(
        key=key,
        state=state.state,
        since_ms=state.since_ms if state.since_ms is not None else updated_at_ms,
        retry_at_ms=state.retry_at_ms,
        attempt=state.attempt,
        evidence=state.evidence(config),
        reason=state.reason,
        config=config,
        policy_version=policy_version,
        updated_at_ms=updated_at_ms,
    )


def state_record(
    *,
    key: str,
    state: CircuitState,
    since_ms: int,
    retry_at_ms: int | None,
    attempt: int,
    evidence: Evidence,
    reason: str | None,
    config: BreakerConfig,
    policy_version: str,
    updated_at_ms: int,
) -> BreakerState:
    """A `breaker-state` record from its parts: a live state's, or a transition's."""
    return BreakerState(
        key=key,
        state=state,
        since=from_epoch_ms(since_ms),
        retry_at=from_epoch_ms(retry_at_ms) if retry_at_ms is not None else None,
        attempt=attempt,
        failure_rate=max(evidence.failure_rate_pct, 0.0) / 100,
        slow_call_rate=max(evidence.slow_call_rate_pct, 0.0) / 100,
        calls_in_window=evidence.calls,
        consecutive_failures=evidence.consecutive_failures,
        calls_while_open=evidence.calls_while_open,
        fallback_action=config.fallback_action,
        reason=reason,
        policy_id=config.policy_id,
        policy_version=policy_version,
        updated_at=from_epoch_ms(updated_at_ms),
    )


Outputs = tuple[Transition, ...]


def step(
    state: BreakerSnapshot, config: BreakerConfig, event: Event
) -> tuple[BreakerSnapshot, Outputs]:
    """Apply one event to `state` (in place) and return it with the transitions it caused
    (usually none)."""
    outputs: list[Transition] = []
    ts_ms = event.ts_ms
    current = state.state
    if current is _CLOSED:
        if state.trips is not None:
            _trips_advance(state, config, ts_ms, outputs)
    elif current is _OPEN or current is _HALF_OPEN:
        _time_passes(state, config, ts_ms, outputs)
    if isinstance(event, Call):
        _record(state, config, event, outputs)
    elif isinstance(event, Command):
        _override(state, config, event, outputs)
    else:  # Clock or Latency: time passes
        current = state.state
        if current is _CLOSED or current is _METRICS_ONLY:
            state.window.advance(ts_ms)  # slides a time window
        if isinstance(event, Latency) and current is _CLOSED and state.trips is not None:
            since_ms = state.since_ms  # measured before the breaker closed: not this CLOSED's
            if since_ms is None or ts_ms >= since_ms:
                for tracker in state.trips:
                    tracker.observe_latency(ts_ms, event.latency_ms)
    return state, (tuple(outputs) if outputs else ())


def _transition(
    state: BreakerSnapshot,
    config: BreakerConfig,
    to: CircuitState,
    at_ms: int,
    reason: str,
    outputs: list[Transition],
    *,
    open_until_ms: int | None = None,
    trip_value: float | None = None,
) -> BreakerSnapshot:
    """Move to `to`, with the bookkeeping of the state entered, and record the transition.
    The evidence is taken from the state left (the window that decided). Opening waits per
    the backoff, or until `open_until_ms` when given."""
    src = state.state
    if (src, to) not in LEGAL_TRANSITIONS:
        raise IllegalTransitionError(src, to)
    evidence = state.evidence(config, trip_value)
    attempt = state.attempt
    retry_at_ms = None
    if to is _OPEN:
        attempt += 1
        retry_at_ms = at_ms + config.wait_ms(attempt) if open_until_ms is None else open_until_ms
    elif to is _HALF_OPEN:
        state.window = CountWindow(config.permitted_calls_in_half_open)
    elif to is _CLOSED or to is _METRICS_ONLY:
        attempt = 0
        state.window = config.new_window()
    state.state = to
    state.since_ms = at_ms
    state.retry_at_ms = retry_at_ms
    state.attempt = attempt
    state.consecutive_failures = state.calls_while_open = 0
    state.half_open_successes = state.consecutive_successes = 0
    state.reason = reason
    _restart_trips(state, config)
    outputs.append(
        Transition(
            from_state=src,
            to_state=to,
            at_ms=at_ms,
            reason=reason,
            evidence=evidence,
            attempt=attempt,
            retry_at_ms=retry_at_ms,
            fallback_action=config.fallback_action,
        )
    )
    return state


def _restart_trips(state: BreakerSnapshot, config: BreakerConfig) -> None:
    if state.state is _CLOSED:  # fresh trackers, from the policy in force now
        state.trips = new_trackers(config.trip_conditions)
    elif state.trips is not None:
        for tracker in state.trips:
            tracker.reset()


def _time_passes(
    state: BreakerSnapshot, config: BreakerConfig, ts_ms: int, outputs: list[Transition]
) -> None:
    """Transitions due to time alone, taken by whatever event first shows that time."""
    if state.state is _OPEN:
        if state.retry_at_ms is not None and ts_ms > state.retry_at_ms:
            _transition(state, config, _HALF_OPEN, ts_ms, "wait_elapsed", outputs)
    elif (
        config.max_wait_in_half_open_ms > 0
        and state.since_ms is not None
        and ts_ms > state.since_ms + config.max_wait_in_half_open_ms
    ):
        _transition(state, config, _OPEN, ts_ms, "max_wait_in_half_open_elapsed", outputs)


def _trips_advance(
    state: BreakerSnapshot, config: BreakerConfig, ts_ms: int, outputs: list[Transition]
) -> None:
    """CLOSED: evaluate the trip-condition windows that event time has left; open on the
    first streak that reaches its count (the transition restarts the others)."""
    for tracker in state.trips or ():
        value = tracker.advance(ts_ms)
        if value is not None:
            reason = f"trip_condition:{tracker.name}"
            _transition(state, config, _OPEN, ts_ms, reason, outputs, trip_value=value)
            return


def _override(
    state: BreakerSnapshot, config: BreakerConfig, event: Command, outputs: list[Transition]
) -> None:
    to = CircuitState(event.override.value)
    if to is not state.state:
        reason = f"override:{event.override.name.lower()}"
        _transition(state, config, to, event.ts_ms, reason, outputs)
    elif to is _CLOSED:  # reset while closed: fresh metrics, nothing to publish
        state.window = config.new_window()
        state.consecutive_failures = 0
        _restart_trips(state, config)


def _record(
    state: BreakerSnapshot, config: BreakerConfig, call: Call, outputs: list[Transition]
) -> None:
    """Count a call where it belongs; in CLOSED and HALF_OPEN, see whether it decides. The
    hot path of the kernel: the CLOSED checks are inline on purpose (a call costs ~0.1 us)."""
    verdict = call.verdict
    if verdict is _IGNORED:
        state.ignored_calls += 1
        return
    ts_ms = call.ts_ms
    since_ms = state.since_ms
    if since_ms is not None and ts_ms < since_ms:
        # Made before the current state began (arrived out of order): it must not decide a
        # half-open trial or enter a fresh window. Counted, as the time window does.
        state.late_calls += 1
        return
    current = state.state
    if current is not _CLOSED:  # (checked first: CLOSED is by far the most common state)
        if current is _OPEN or current is _FORCED_OPEN:
            state.calls_while_open += 1
            return
        if current is _DISABLED:
            return
    window = state.window
    if not window.add(call.failed, call.slow, call.cost_usd, call.duration_ms, ts_ms):
        state.late_calls += 1
        return
    failed = verdict is _FAILURE
    if failed:
        state.consecutive_failures += 1
    elif state.consecutive_failures:
        state.consecutive_failures = 0
    if current is _CLOSED:
        if state.trips is not None:
            for tracker in state.trips:
                tracker.observe_call(ts_ms, failed, call.duration_ms)
        # Resilience4j's rates, inline (this runs on every call; see evaluate_counts).
        reason = None
        calls = window.calls
        if calls >= config._closed_minimum_calls:  # the minimum is >= 1: calls > 0 here
            failed_calls = window.failed_calls
            slow_calls = window.slow_calls  # (a rate of 0 never reaches a threshold > 0)
            failing = failed_calls > 0 and (
                failed_calls * 100.0 / calls >= config.failure_rate_threshold_pct
            )
            slow = slow_calls > 0 and (
                slow_calls * 100.0 / calls >= config.slow_call_rate_threshold_pct
            )
            if failing or slow:
                reason = _rates_reason(failing, slow)
        if reason is None and config._seed_closed_triggers:
            reason = _seed_reason(state, config, window)
        if reason is not None or call.retry_at_ms is not None:  # rare: most calls stop here
            _decide(state, config, call, failed, reason, False, outputs)
    elif current is _HALF_OPEN:
        reason, close = _half_open_decision(state, config, failed)
        _decide(state, config, call, failed, reason, close, outputs)
    # METRICS_ONLY: recorded, never decides


def _decide(
    state: BreakerSnapshot,
    config: BreakerConfig,
    call: Call,
    failed: bool,
    reason: str | None,
    close: bool,
    outputs: list[Transition],
) -> None:
    """Act on a recorded call: open for `reason` or a vendor's retry-after, or close."""
    ts_ms = call.ts_ms
    until_ms = call.retry_at_ms
    if failed and until_ms is not None and until_ms > ts_ms:
        if reason is None:
            reason = RETRY_AFTER_REASON
        else:  # tripped anyway: wait for the backoff or the vendor, whichever is later
            until_ms = max(until_ms, ts_ms + config.wait_ms(state.attempt + 1))
    else:
        until_ms = None
    if reason is not None:
        _transition(state, config, _OPEN, ts_ms, reason, outputs, open_until_ms=until_ms)
    elif close:
        _transition(state, config, _CLOSED, ts_ms, close_reason(config), outputs)


def _rates_reason(failing: bool, slow: bool) -> str:
    if failing:
        return _ABOVE_THRESHOLDS if slow else _FAILURE_RATE_ABOVE
    return _SLOW_CALL_RATE_ABOVE


def _seed_reason(state: BreakerSnapshot, config: BreakerConfig, window: Window) -> str | None:
    """The seeds' CLOSED triggers, after the rates: consecutive failures, then cost."""
    threshold = config.failure_threshold
    if threshold and state.consecutive_failures >= threshold:
        return "consecutive_failures"
    ratio = config._cost_threshold_ratio
    if ratio is not None and window.cost is not None and window.cost.exceeds(*ratio):
        return "cost_threshold"
    return None


def _half_open_decision(
    state: BreakerSnapshot, config: BreakerConfig, failed: bool
) -> tuple[str | None, bool]:
    """After a trial call: (reason to reopen or None, whether to close). See the module doc."""
    if failed:
        state.consecutive_successes = 0
    else:
        state.half_open_successes += 1
        state.consecutive_successes += 1
    trial_calls = state.window.calls
    if config._seed_half_open:
        need = max(
            config.success_threshold - state.half_open_successes,
            config.consecutive_success_threshold - state.consecutive_successes,
        )
        if need <= 0:
            return None, True
        if need > config.permitted_calls_in_half_open - trial_calls:
            return "success_threshold_unreachable", False
        return None, False
    window = state.window
    result = evaluate_counts(
        trial_calls,
        window.failed_calls,
        window.slow_calls,
        config._half_open_minimum_calls,
        config,
    )
    if result is Result.BELOW_MINIMUM_CALLS:
        return None, False
    if result is _BELOW_THRESHOLDS:
        return None, True
    return str(result), False


def close_reason(config: BreakerConfig) -> str:
    """Why HALF_OPEN closed: the seeds' success thresholds, or Resilience4j's rates."""
    return "success_threshold_reached" if config._seed_half_open else str(_BELOW_THRESHOLDS)
