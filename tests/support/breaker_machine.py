"""A breaker kernel driven one event at a time, as Resilience4j's tests drive its state machine:
the test moves event time, feeds calls and clock events, and reads the transitions."""

from __future__ import annotations

from schemas.state import CircuitState
from workers.kernels.breaker import BreakerConfig, Clock, Event, Transition, initial_state, step


class BreakerMachine:
    """One breaker's state under `config`, at event time `now_ms`; keeps every transition."""

    def __init__(self, config: BreakerConfig, t0_ms: int) -> None:
        self.config = config
        self.state = initial_state(config)
        self.now_ms = t0_ms
        self.transitions: list[Transition] = []

    def feed(self, event: Event) -> tuple[Transition, ...]:
        self.state, out = step(self.state, self.config, event)
        self.transitions.extend(out)
        return out

    def wait_out_open(self) -> None:
        """From OPEN, a clock event just after the wait: HALF_OPEN."""
        before = self.state.state
        self.now_ms += self.config.wait_in_open_ms + 1
        self.feed(Clock(self.now_ms))
        assert (before, self.state.state) == (CircuitState.OPEN, CircuitState.HALF_OPEN)
