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

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from schemas.events import InvocationStatus, ToolInvocation
from schemas.state import BreakerState, CircuitState
from workers.errors import ConfigError, GuardstreamError
from workers.kernels.windows import CountWindow, Outcome, TimeWindow, Window, WindowSnapshot

# Resilience4j's defaults, with their units.
DEFAULT_FAILURE_RATE_THRESHOLD_PCT = 50.0
DEFAULT_SLOW_CALL_RATE_THRESHOLD_PCT = 100.0
DEFAULT_SLOW_CALL_DURATION_MS = 60_000.0
DEFAULT_SLIDING_WINDOW_SIZE = 100
DEFAULT_MINIMUM_NUMBER_OF_CALLS = 100
DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN = 10
DEFAULT_WAIT_IN_OPEN_MS = 60_000
DEFAULT_EXCLUDE_ERRORS = frozenset({"400", "401", "403"})
RATE_LIMIT = "rate_limit"
RETRY_AFTER_REASON = "rate_limit_retry_after"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

S = CircuitState

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


class WindowType(StrEnum):
    COUNT = "count"
    TIME = "time"


class Verdict(StrEnum):
    """How a call counts for a breaker."""

    IGNORED = "ignored"
    SUCCESS = "success"
    FAILURE = "failure"


class Result(StrEnum):
    """What the policy makes of a window (Resilience4j's CircuitBreakerMetrics.Result)."""

    BELOW_MINIMUM_CALLS = "below_minimum_calls"
    BELOW_THRESHOLDS = "below_thresholds"
    FAILURE_RATE_ABOVE_THRESHOLD = "failure_rate_above_threshold"
    SLOW_CALL_RATE_ABOVE_THRESHOLD = "slow_call_rate_above_threshold"
    ABOVE_THRESHOLDS = "above_thresholds"


class Override(StrEnum):
    """Operator commands; each names the state it leads to."""

    FORCE_OPEN = "forced_open"
    DISABLE = "disabled"
    METRICS_ONLY = "metrics_only"
    RESET = "closed"


def _fail(name: str, value: object, rule: str) -> ConfigError:
    return ConfigError(f"breaker config {name} {rule}, not {value!r}")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """One breaker policy. Every quantity carries its unit; validated on construction."""

    policy_id: str = "default"
    failure_rate_threshold_pct: float = DEFAULT_FAILURE_RATE_THRESHOLD_PCT
    slow_call_rate_threshold_pct: float = DEFAULT_SLOW_CALL_RATE_THRESHOLD_PCT
    slow_call_duration_ms: float = DEFAULT_SLOW_CALL_DURATION_MS
    """A call is slow when its duration is strictly greater than this."""
    sliding_window_type: WindowType = WindowType.COUNT
    sliding_window_size: int = DEFAULT_SLIDING_WINDOW_SIZE
    """Calls (COUNT) or seconds (TIME)."""
    time_bucket_s: int = 1
    allowed_lateness_ms: int = 0
    """TIME windows: how far behind the newest event time a call may still be counted."""
    minimum_number_of_calls: int = DEFAULT_MINIMUM_NUMBER_OF_CALLS
    permitted_calls_in_half_open: int = DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN
    wait_in_open_ms: int = DEFAULT_WAIT_IN_OPEN_MS
    """Initial wait; with backoff, attempt n waits wait * multiplier**(n-1), capped."""
    backoff_multiplier: float = 1.0
    max_wait_in_open_ms: int | None = None
    max_wait_in_half_open_ms: int = 0
    """0: stay HALF_OPEN until the permitted calls decided; else reopen strictly after it."""
    failure_threshold: int = 0
    """Seeds: open after this many consecutive failures (0: off)."""
    error_types: frozenset[str] = frozenset()
    """Error types recorded as failures; empty: all. Others count as successes (Resilience4j's
    recordExceptions rule)."""
    exclude_errors: frozenset[str] = DEFAULT_EXCLUDE_ERRORS
    """Error types ignored altogether (ignoreExceptions); wins over error_types."""
    cost_threshold_usd: Decimal | None = None
    """Open when the cost in the window exceeds this."""
    fallback_action: str | None = None

    def __post_init__(self) -> None:
        for name in ("failure_rate_threshold_pct", "slow_call_rate_threshold_pct"):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise _fail(name, value, "must be in (0, 100]")
        positive_ints = (
            "sliding_window_size",
            "time_bucket_s",
            "minimum_number_of_calls",
            "permitted_calls_in_half_open",
            "wait_in_open_ms",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(name, value, "must be an integer >= 1")
        for name in ("allowed_lateness_ms", "max_wait_in_half_open_ms", "failure_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _fail(name, value, "must be an integer >= 0")
        if self.slow_call_duration_ms <= 0:
            raise _fail("slow_call_duration_ms", self.slow_call_duration_ms, "must be > 0")
        if self.backoff_multiplier < 1:
            raise _fail("backoff_multiplier", self.backoff_multiplier, "must be >= 1")
        if self.max_wait_in_open_ms is not None and self.max_wait_in_open_ms < self.wait_in_open_ms:
            raise _fail(
                "max_wait_in_open_ms",
                self.max_wait_in_open_ms,
                f"must be >= wait_in_open_ms ({self.wait_in_open_ms})",
            )
        if self.cost_threshold_usd is not None and self.cost_threshold_usd <= 0:
            raise _fail("cost_threshold_usd", self.cost_threshold_usd, "must be > 0")
        if self.sliding_window_type is WindowType.TIME and (
            self.sliding_window_size % self.time_bucket_s
        ):
            raise _fail(
                "sliding_window_size",
                self.sliding_window_size,
                f"must be a multiple of time_bucket_s ({self.time_bucket_s})",
            )
        if self.sliding_window_type not in tuple(WindowType):
            raise _fail("sliding_window_type", self.sliding_window_type, "must be count|time")

    @property
    def closed_minimum_calls(self) -> int:
        """Resilience4j caps the minimum at the size for count windows only."""
        if self.sliding_window_type is WindowType.COUNT:
            return min(self.minimum_number_of_calls, self.sliding_window_size)
        return self.minimum_number_of_calls

    @property
    def half_open_minimum_calls(self) -> int:
        return min(self.minimum_number_of_calls, self.permitted_calls_in_half_open)

    def new_window(self) -> Window:
        if self.sliding_window_type is WindowType.COUNT:
            return CountWindow(self.sliding_window_size)
        return TimeWindow(self.sliding_window_size, self.time_bucket_s, self.allowed_lateness_ms)

    def wait_ms(self, attempt: int) -> int:
        """Wait in OPEN before the `attempt`-th (1-based) half-open trial."""
        wait = self.wait_in_open_ms * self.backoff_multiplier ** max(attempt - 1, 0)
        if self.max_wait_in_open_ms is not None:
            wait = min(wait, self.max_wait_in_open_ms)
        return round(wait)


# --- events ---


@dataclass(frozen=True, slots=True)
class Call:
    """One classified invocation: the breaker's view of a ToolInvocation."""

    ts_ms: int
    verdict: Verdict
    outcome: Outcome
    retry_at_ms: int | None = None
    """A rate-limited failure: the vendor asked not to be called again before this instant."""


@dataclass(frozen=True, slots=True)
class Clock:
    """Event time passes with no traffic (a clock event from the ordered stream)."""

    ts_ms: int


@dataclass(frozen=True, slots=True)
class Command:
    """An operator override or reset."""

    ts_ms: int
    override: Override


Event = Call | Clock | Command


def classify(
    invocation: ToolInvocation, config: BreakerConfig, *, retry_after_ms: float | None = None
) -> Call:
    """Which way a call counts: excluded errors and rejected calls are ignored; an error whose
    type is not in a non-empty `error_types` counts as a success (as in Resilience4j).

    `retry_after_ms` is the vendor's Retry-After for a `rate_limit` failure, as the caller
    found it (ToolInvocation has no field for it yet); it opens the breaker until then."""
    ts_ms = (invocation.ts - _EPOCH) // _ONE_MS
    retry_at_ms = None
    slow = invocation.duration_ms > config.slow_call_duration_ms
    status = invocation.status
    if status is InvocationStatus.SUCCESS:
        verdict = Verdict.SUCCESS
    elif status is InvocationStatus.REJECTED:
        verdict = Verdict.IGNORED  # never reached the vendor
    else:
        error_type = invocation.error_type
        if error_type is None and status is InvocationStatus.TIMEOUT:
            error_type = "timeout"
        if error_type is not None and error_type in config.exclude_errors:
            verdict = Verdict.IGNORED
        elif config.error_types and error_type not in config.error_types:
            verdict = Verdict.SUCCESS
        else:
            verdict = Verdict.FAILURE
            if error_type == RATE_LIMIT and retry_after_ms is not None and retry_after_ms > 0:
                retry_at_ms = ts_ms + math.ceil(retry_after_ms)
    outcome = Outcome(
        failed=verdict is Verdict.FAILURE,
        slow=slow,
        duration_ms=invocation.duration_ms,
        cost_usd=invocation.cost_usd,
    )
    return Call(ts_ms, verdict, outcome, retry_at_ms)


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


def _utc(ts_ms: int) -> datetime:
    return _EPOCH + ts_ms * _ONE_MS


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
        since=_utc(state.since_ms if state.since_ms is not None else updated_at_ms),
        retry_at=_utc(state.retry_at_ms) if state.retry_at_ms is not None else None,
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
        updated_at=_utc(updated_at_ms),
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
