"""The breaker kernel's state (`BreakerSnapshot`) and outputs (`Transition` with its
`Evidence`). The state is mutable and owned by the caller: `step` updates it in place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from schemas.state import CircuitState
from workers.kernels.breaker_config import BreakerConfig
from workers.kernels.breaker_trips import TripTracker
from workers.kernels.breaker_windows import Window

_HALF_OPEN = CircuitState.HALF_OPEN
_ZERO_USD = Decimal(0)


def rate_pct(rate: float, calls: int, minimum_calls: int) -> float:
    """A rate as Resilience4j reports it: -1 below the minimum number of calls."""
    return -1.0 if calls == 0 or calls < minimum_calls else rate


@dataclass(frozen=True, slots=True)
class Evidence:
    """The numbers that decided a transition (from the window of the state left)."""

    calls: int
    failed_calls: int
    slow_calls: int
    failure_rate_pct: float
    slow_call_rate_pct: float
    cost_usd: Decimal
    """Cost in the window; tracked only when the policy has a cost threshold (else 0)."""
    consecutive_failures: int
    calls_while_open: int
    trip_value: float | None = None
    """The metric value of the trip condition that opened the breaker (ms or a fraction)."""
    half_open_successes: int = 0
    consecutive_successes: int = 0
    """HALF_OPEN only: successful trial calls, and the current run of them."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready plain values; the cost as a fixed-point string (exact)."""
        cost = self.cost_usd.copy_abs() if self.cost_usd.is_zero() else self.cost_usd
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "slow_calls": self.slow_calls,
            "failure_rate_pct": self.failure_rate_pct,
            "slow_call_rate_pct": self.slow_call_rate_pct,
            "cost_usd": format(cost, "f"),
            "consecutive_failures": self.consecutive_failures,
            "calls_while_open": self.calls_while_open,
            "trip_value": self.trip_value,
            "half_open_successes": self.half_open_successes,
            "consecutive_successes": self.consecutive_successes,
        }


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


@dataclass(slots=True)
class BreakerSnapshot:
    """The kernel's state for one breaker key. Mutable: `step` updates it in place (the caller
    owns it); `copy()` gives an independent one."""

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
    half_open_successes: int = 0
    consecutive_successes: int = 0
    """HALF_OPEN: successful trial calls so far, and the current run of them."""
    trips: list[TripTracker] | None = None
    """One tracker per trip condition; None when the policy has none."""

    def minimum_calls(self, config: BreakerConfig) -> int:
        if self.state is _HALF_OPEN:
            return config.half_open_minimum_calls
        return config.closed_minimum_calls

    def evidence(self, config: BreakerConfig, trip_value: float | None = None) -> Evidence:
        window = self.window
        calls = window.calls
        minimum = self.minimum_calls(config)
        failure = window.failed_calls * 100.0 / calls if calls else 0.0
        slow = window.slow_calls * 100.0 / calls if calls else 0.0
        return Evidence(
            calls=calls,
            failed_calls=window.failed_calls,
            slow_calls=window.slow_calls,
            failure_rate_pct=rate_pct(failure, calls, minimum),
            slow_call_rate_pct=rate_pct(slow, calls, minimum),
            cost_usd=window.cost.total_usd() if window.cost is not None else _ZERO_USD,
            consecutive_failures=self.consecutive_failures,
            calls_while_open=self.calls_while_open,
            trip_value=trip_value,
            half_open_successes=self.half_open_successes,
            consecutive_successes=self.consecutive_successes,
        )

    def copy(self) -> BreakerSnapshot:
        """An independent copy: stepping either never changes the other."""
        trips = self.trips
        return replace(
            self,
            window=self.window.copy(),
            trips=None if trips is None else [tracker.copy() for tracker in trips],
        )
