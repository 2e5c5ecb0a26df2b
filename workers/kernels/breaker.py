"""Circuit-breaker kernel (DESIGN §6, issue 3): `step(state, config, event) -> (state, outputs)`.

Resilience4j's three layers, as plain values:
- windows (`workers.kernels.windows`) hold the outcomes;
- `evaluate` turns a window snapshot into a `Result` (CircuitBreakerMetrics' policy);
- `step` is the state machine; the legal transitions are `LEGAL_TRANSITIONS`, anything else
  raises `IllegalTransitionError`. Self-transitions publish nothing.

Pure: no clock, no I/O, no randomness. Time is `ts_ms` on every event (event time); a `Clock`
event moves time with no traffic, so OPEN -> HALF_OPEN happens with the first event of any kind
whose `ts_ms` is strictly after `retry_at_ms`. `step` never mutates its input state: the
window is copied (a shallow list copy) before it is touched.

Beyond Resilience4j: the seeds' consecutive-failure trigger (`failure_threshold`), error types
counted / excluded, a cost threshold over the window, `fallback_action`, event-time lateness.
A `rate_limit` failure carrying a retry-after opens the breaker until that instant.
Not here yet: the RESONTINEX trip conditions (latency p95, success rate with consecutive
violations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from schemas.state import BreakerState, CircuitState
from schemas.types import from_epoch_ms
from workers.errors import GuardstreamError
from workers.kernels.breaker_config import RETRY_AFTER_REASON, BreakerConfig, WindowType
from workers.kernels.breaker_events import (
    Call,
    Clock,
    Command,
    Event,
    Override,
    Verdict,
    classify,
)
from workers.kernels.windows import CountWindow, Window, WindowSnapshot

S = CircuitState

__all__ = [
    "LEGAL_TRANSITIONS",
    "BreakerConfig",
    "BreakerSnapshot",
    "Call",
    "Clock",
    "Command",
    "Event",
    "IllegalTransitionError",
    "Override",
    "Transition",
    "Verdict",
    "WindowType",
    "classify",
    "initial_state",
    "published_state",
    "step",
]

# Every transition the machine may make, written down once (Resilience4j's StateTransition,
# minus the self-transitions, which publish nothing and are never checked here).
_OVERRIDES = (S.FORCED_OPEN, S.DISABLED, S.METRICS_ONLY)
LEGAL_TRANSITIONS: frozenset[tuple[CircuitState, CircuitState]] = frozenset(
    {
        (S.CLOSED, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.CLOSED),
        (S.HALF_OPEN, S.OPEN),
        *((src, dst) for src in S for dst in _OVERRIDES if src != dst),
        *((src, S.CLOSED) for src in (*_OVERRIDES, S.OPEN)),  # reset (HALF_OPEN's is above)
    }
)


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


# --- policy ---


def evaluate(snapshot: WindowSnapshot, minimum_calls: int, config: BreakerConfig) -> Result:
    """Resilience4j's checkIfThresholdsExceeded: rates count from `minimum_calls` on, and a
    threshold trips when the rate is >= it."""
    if snapshot.total_calls == 0 or snapshot.total_calls < minimum_calls:
        return Result.BELOW_MINIMUM_CALLS
    failing = snapshot.failure_rate_pct >= config.failure_rate_threshold_pct
    slow = snapshot.slow_call_rate_pct >= config.slow_call_rate_threshold_pct
    if failing and slow:
        return Result.ABOVE_THRESHOLDS
    if failing:
        return Result.FAILURE_RATE_ABOVE_THRESHOLD
    if slow:
        return Result.SLOW_CALL_RATE_ABOVE_THRESHOLD
    return Result.BELOW_THRESHOLDS


def rate_pct(rate: float, calls: int, minimum_calls: int) -> float:
    """A rate as Resilience4j reports it: -1 below the minimum number of calls."""
    return -1.0 if calls == 0 or calls < minimum_calls else rate


# --- state and outputs ---


@dataclass(frozen=True, slots=True)
class Evidence:
    """The numbers that decided a transition."""

    calls: int
    failed_calls: int
    slow_calls: int
    failure_rate_pct: float
    slow_call_rate_pct: float
    cost_usd: Decimal
    consecutive_failures: int
    calls_while_open: int


@dataclass(frozen=True, slots=True)
class Transition:
    """Output: the breaker moved. The shell publishes it on breaker-state, audit, alerts."""

    from_state: CircuitState
    to_state: CircuitState
    at_ms: int
    reason: str
    evidence: Evidence
    attempt: int
    retry_at_ms: int | None
    fallback_action: str | None


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """The kernel's state for one breaker key. Never mutated: `step` returns a new one."""

    window: Window
    state: CircuitState = CircuitState.CLOSED
    since_ms: int | None = None
    retry_at_ms: int | None = None
    attempt: int = 0
    """Openings since the breaker last closed (drives the backoff)."""
    consecutive_failures: int = 0
    calls_while_open: int = 0
    late_calls: int = 0
    """Calls too late for the time window, or made before the current state began: counted
    here, never in the rates."""
    ignored_calls: int = 0
    reason: str | None = None
    """Why the last transition happened."""

    def minimum_calls(self, config: BreakerConfig) -> int:
        if self.state is CircuitState.HALF_OPEN:
            return config.half_open_minimum_calls
        return config.closed_minimum_calls

    def evidence(self, config: BreakerConfig) -> Evidence:
        snap = self.window.snapshot()
        minimum = self.minimum_calls(config)
        return Evidence(
            calls=snap.total_calls,
            failed_calls=snap.failed_calls,
            slow_calls=snap.slow_calls,
            failure_rate_pct=rate_pct(snap.failure_rate_pct, snap.total_calls, minimum),
            slow_call_rate_pct=rate_pct(snap.slow_call_rate_pct, snap.total_calls, minimum),
            cost_usd=snap.total_cost_usd,
            consecutive_failures=self.consecutive_failures,
            calls_while_open=self.calls_while_open,
        )


def initial_state(config: BreakerConfig) -> BreakerSnapshot:
    return BreakerSnapshot(window=config.new_window())


def published_state(
    state: BreakerSnapshot,
    config: BreakerConfig,
    *,
    key: str,
    policy_version: str,
    updated_at_ms: int,
) -> BreakerState:
    """The `breaker-state` record gateways read (rates as fractions, 0 below the minimum)."""
    e = state.evidence(config)
    return BreakerState(
        key=key,
        state=state.state,
        since=from_epoch_ms(state.since_ms if state.since_ms is not None else updated_at_ms),
        retry_at=from_epoch_ms(state.retry_at_ms) if state.retry_at_ms is not None else None,
        attempt=state.attempt,
        failure_rate=max(e.failure_rate_pct, 0.0) / 100,
        slow_call_rate=max(e.slow_call_rate_pct, 0.0) / 100,
        calls_in_window=e.calls,
        consecutive_failures=e.consecutive_failures,
        calls_while_open=e.calls_while_open,
        fallback_action=config.fallback_action,
        reason=state.reason,
        policy_id=config.policy_id,
        policy_version=policy_version,
        updated_at=from_epoch_ms(updated_at_ms),
    )


Outputs = tuple[Transition, ...]


def step(
    state: BreakerSnapshot, config: BreakerConfig, event: Event
) -> tuple[BreakerSnapshot, Outputs]:
    """Apply one event. Returns the new state and the transitions it caused (often none)."""
    outputs: list[Transition] = []
    state = _time_passes(state, config, event.ts_ms, outputs)
    if isinstance(event, Command):
        state = _override(state, config, event, outputs)
    elif isinstance(event, Call):
        state = _record(state, config, event, outputs)
    elif state.state in (CircuitState.CLOSED, CircuitState.METRICS_ONLY):
        window = state.window.copy()
        window.advance(event.ts_ms)  # a clock event slides a time window
        state = replace(state, window=window)
    return state, tuple(outputs)


def _transition(
    state: BreakerSnapshot,
    config: BreakerConfig,
    to: CircuitState,
    at_ms: int,
    reason: str,
    outputs: list[Transition],
    *,
    open_until_ms: int | None = None,
) -> BreakerSnapshot:
    """Move to `to`, with the bookkeeping of the state entered, and record the transition.
    The evidence is taken from the state left (the window that decided). Opening waits per
    the backoff, or until `open_until_ms` when given."""
    src = state.state
    if (src, to) not in LEGAL_TRANSITIONS:
        raise IllegalTransitionError(src, to)
    evidence = state.evidence(config)
    attempt = state.attempt
    retry_at_ms = None
    window = state.window
    if to is CircuitState.OPEN:
        attempt += 1
        retry_at_ms = at_ms + config.wait_ms(attempt) if open_until_ms is None else open_until_ms
    elif to is CircuitState.HALF_OPEN:
        window = CountWindow(config.permitted_calls_in_half_open)
    elif to in (CircuitState.CLOSED, CircuitState.METRICS_ONLY):
        attempt = 0
        window = config.new_window()
    new = BreakerSnapshot(
        window=window,
        state=to,
        since_ms=at_ms,
        retry_at_ms=retry_at_ms,
        attempt=attempt,
        late_calls=state.late_calls,
        ignored_calls=state.ignored_calls,
        reason=reason,
    )
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
    return new


def _time_passes(
    state: BreakerSnapshot, config: BreakerConfig, ts_ms: int, outputs: list[Transition]
) -> BreakerSnapshot:
    """Transitions due to time alone, taken by whatever event first shows that time."""
    if state.state is CircuitState.OPEN and state.retry_at_ms is not None:
        if ts_ms > state.retry_at_ms:
            return _transition(
                state, config, CircuitState.HALF_OPEN, ts_ms, "wait_elapsed", outputs
            )
    elif (
        state.state is CircuitState.HALF_OPEN
        and config.max_wait_in_half_open_ms > 0
        and state.since_ms is not None
        and ts_ms > state.since_ms + config.max_wait_in_half_open_ms
    ):
        return _transition(
            state, config, CircuitState.OPEN, ts_ms, "max_wait_in_half_open_elapsed", outputs
        )
    return state


def _override(
    state: BreakerSnapshot, config: BreakerConfig, event: Command, outputs: list[Transition]
) -> BreakerSnapshot:
    to = CircuitState(event.override.value)
    if to is state.state:
        if to is CircuitState.CLOSED:  # reset while closed: fresh metrics, nothing to publish
            return replace(state, window=config.new_window(), consecutive_failures=0)
        return state
    return _transition(
        state, config, to, event.ts_ms, f"override:{event.override.name.lower()}", outputs
    )


def _record(
    state: BreakerSnapshot, config: BreakerConfig, call: Call, outputs: list[Transition]
) -> BreakerSnapshot:
    current = state.state
    if call.verdict is Verdict.IGNORED:
        return replace(state, ignored_calls=state.ignored_calls + 1)
    if state.since_ms is not None and call.ts_ms < state.since_ms:
        # Made before the current state began (arrived out of order): it must not decide a
        # half-open trial or enter a fresh window. Counted, as the time window does.
        return replace(state, late_calls=state.late_calls + 1)
    if current in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
        return replace(state, calls_while_open=state.calls_while_open + 1)
    if current is CircuitState.DISABLED:
        return state
    window = state.window.copy()
    if not window.record(call.outcome, call.ts_ms):
        return replace(state, late_calls=state.late_calls + 1)
    failed = call.verdict is Verdict.FAILURE
    consecutive = state.consecutive_failures + 1 if failed else 0
    state = replace(state, window=window, consecutive_failures=consecutive)
    if current is CircuitState.METRICS_ONLY:
        return state
    reason = _trip_reason(state, config)
    until_ms = call.retry_at_ms if failed and call.retry_at_ms is not None else None
    if until_ms is not None and until_ms > call.ts_ms:
        if reason is None:
            reason = RETRY_AFTER_REASON
        else:  # tripped anyway: wait for the backoff or the vendor, whichever is later
            until_ms = max(until_ms, call.ts_ms + config.wait_ms(state.attempt + 1))
    else:
        until_ms = None
    if reason is not None:
        return _transition(
            state, config, CircuitState.OPEN, call.ts_ms, reason, outputs, open_until_ms=until_ms
        )
    if current is CircuitState.HALF_OPEN:
        result = evaluate(window.snapshot(), config.half_open_minimum_calls, config)
        if result is Result.BELOW_THRESHOLDS:
            return _transition(state, config, CircuitState.CLOSED, call.ts_ms, str(result), outputs)
    return state


def _trip_reason(state: BreakerSnapshot, config: BreakerConfig) -> str | None:
    """Why the breaker must open now, or None. Rates first (Resilience4j), then the seeds'
    consecutive-failure and cost triggers (closed state only)."""
    snapshot = state.window.snapshot()
    result = evaluate(snapshot, state.minimum_calls(config), config)
    if result not in (Result.BELOW_MINIMUM_CALLS, Result.BELOW_THRESHOLDS):
        return str(result)
    if state.state is not CircuitState.CLOSED:
        return None
    if config.failure_threshold and state.consecutive_failures >= config.failure_threshold:
        return "consecutive_failures"
    if (
        config.cost_threshold_usd is not None
        and snapshot.total_cost_usd > config.cost_threshold_usd
    ):
        return "cost_threshold"
    return None
