"""Routes stream events to breaker kernels and turns their transitions into decisions.

One engine holds the breakers of one stream (an input partition live, a whole file in
`replay`): a clock tick moves time for every breaker it holds. No I/O, no clock: the Faust
sink and `guardstream replay` both drive this same code, which is what makes replay exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from schemas.alerts import Alert
from schemas.clock import ClockTick
from schemas.events import LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride, OverrideAction
from schemas.state import BreakerState, CircuitState
from schemas.stream import StreamEvent
from schemas.types import epoch_ms, rfc3339_ms
from workers.breakers.alerts import BreakerIdentity, alert_change
from workers.decisions import AlertDecision, Decision, Kernel, TransitionDecision
from workers.kernels.breaker import (
    BreakerConfig,
    BreakerSnapshot,
    Clock,
    Command,
    Override,
    Transition,
    WindowType,
    classify,
    initial_state,
    observe_latency,
    published_state,
    state_record,
    step,
)
from workers.kernels.breaker_events import Event


class BreakerRouting(Protocol):
    """What the engine needs from a breaker policy (workers.policies.breakers)."""

    @property
    def version(self) -> str: ...
    def resolve(self, vendor: str, tool: str) -> BreakerConfig: ...
    def key_for(self, vendor: str, tool: str) -> str: ...
    def enabled(self, breaker_id: str) -> bool: ...


@dataclass(slots=True)
class Breaker:
    """One breaker key: its kernel state, its policy and the alert it has firing."""

    identity: BreakerIdentity
    config: BreakerConfig
    state: BreakerSnapshot
    firing: Alert | None = None
    last_ts_ms: int = 0


_OVERRIDES = {
    OverrideAction.FORCE_OPEN: Override.FORCE_OPEN,
    OverrideAction.DISABLE: Override.DISABLE,
    OverrideAction.METRICS_ONLY: Override.METRICS_ONLY,
    OverrideAction.RESET: Override.RESET,
}

# Marks a (vendor, tool) pair not routed yet (None already means "disabled").
_UNROUTED: Any = object()


class BreakerEngine:
    def __init__(self, policy: BreakerRouting) -> None:
        self.policy = policy
        self._breakers: dict[str, Breaker] = {}
        # (vendor, tool) -> its breaker (None: disabled), so routing runs once per pair.
        self._routes: dict[tuple[str, str], Breaker | None] = {}

    def __len__(self) -> int:
        return len(self._breakers)

    def apply(self, event: StreamEvent) -> list[Decision]:
        """Feed one event (in stream order); returns the decisions it caused, often none."""
        if type(event) is ToolInvocation:  # the hot path: written out, no helper calls
            breaker = self._routes.get((event.vendor, event.tool), _UNROUTED)
            if breaker is _UNROUTED:
                breaker = self._breaker(event.vendor, event.tool)
            if breaker is None:
                return []
            retry_after_ms = _retry_after_ms(event) if event.attributes else None
            config = breaker.config
            call = classify(event, config, retry_after_ms=retry_after_ms)
            breaker.state, transitions = step(breaker.state, config, call)
            if call.ts_ms > breaker.last_ts_ms:
                breaker.last_ts_ms = call.ts_ms
            if not transitions:
                return []
            return self._decisions(breaker, transitions, event.event_id)
        if isinstance(event, ClockTick):
            return self.advance(epoch_ms(event.ts), event.event_id)
        if isinstance(event, LatencyEvent):
            return self._latency(event)
        if isinstance(event, BreakerOverride):
            return self._override(event)
        return []  # cost events do not concern breakers

    def advance(self, ts_ms: int, event_id: str) -> list[Decision]:
        """Event time reached `ts_ms` with no traffic (a clock tick)."""
        decisions: list[Decision] = []
        tick = Clock(ts_ms)
        for breaker in self._breakers.values():
            if _time_matters(breaker):
                decisions.extend(self._step(breaker, tick, event_id))
        return decisions

    def circuit_states(self) -> Iterator[CircuitState]:
        """Each breaker's state alone (metrics: no record built per scrape)."""
        for breaker in self._breakers.values():
            yield breaker.state.state

    def states(self) -> Iterator[BreakerState]:
        """The published state of every breaker, as of the last event each one saw."""
        for key, breaker in self._breakers.items():
            yield self._published(key, breaker, breaker.last_ts_ms)

    def _latency(self, event: LatencyEvent) -> list[Decision]:
        observed = observe_latency(event)
        breaker = None if observed is None else self._breaker(event.vendor, event.tool)
        if observed is None or breaker is None:
            return []
        return self._step(breaker, observed, event.event_id)

    def _override(self, event: BreakerOverride) -> list[Decision]:
        breaker = self._breaker(event.vendor, event.tool)
        if breaker is None:
            return []  # a disabled policy entry: nothing to override
        command = Command(epoch_ms(event.ts), _OVERRIDES[event.action])
        # Who asked and why belong in the audit record of what it changed.
        asked = {"actor": event.actor, "override_reason": event.reason}
        return [
            replace(decision, details={**decision.details, **asked})
            if isinstance(decision, TransitionDecision)
            else decision
            for decision in self._step(breaker, command, event.event_id)
        ]

    def _breaker(self, vendor: str, tool: str) -> Breaker | None:
        """The breaker for a call, created on first sight; None when its policy entry is
        disabled (`enabled: false`): such calls are not governed at all."""
        route = (vendor, tool)
        if route in self._routes:
            return self._routes[route]
        breaker = self._routes[route] = self._route(vendor, tool)
        return breaker

    def _route(self, vendor: str, tool: str) -> Breaker | None:
        key = self.policy.key_for(vendor, tool)
        breaker = self._breakers.get(key)
        if breaker is None:
            config = self.policy.resolve(vendor, tool)
            if not self.policy.enabled(config.policy_id):
                return None
            identity = BreakerIdentity(key, vendor, tool)
            breaker = self._breakers[key] = Breaker(identity, config, initial_state(config))
        return breaker

    def _step(self, breaker: Breaker, event: Event, event_id: str) -> list[Decision]:
        breaker.state, transitions = step(breaker.state, breaker.config, event)
        if event.ts_ms > breaker.last_ts_ms:
            breaker.last_ts_ms = event.ts_ms
        if not transitions:
            return []
        return self._decisions(breaker, transitions, event_id)

    def _decisions(
        self, breaker: Breaker, transitions: tuple[Transition, ...], event_id: str
    ) -> list[Decision]:
        decisions: list[Decision] = []
        for transition in transitions:
            decisions.extend(self._decide(breaker, transition, event_id))
        return decisions

    def _decide(self, breaker: Breaker, transition: Transition, event_id: str) -> list[Decision]:
        version = self.policy.version
        key = breaker.identity.key
        decisions: list[Decision] = [
            TransitionDecision(
                kernel=Kernel.BREAKER,
                key=key,
                ts_ms=transition.at_ms,
                event_id=event_id,
                policy_version=version,
                from_state=transition.from_state.value,
                to_state=transition.to_state.value,
                reason=transition.reason,
                policy_id=breaker.config.policy_id,
                evidence=transition.evidence.as_dict(),
                details={
                    "attempt": transition.attempt,
                    "retry_at": _rfc3339_or_none(transition.retry_at_ms),
                    "fallback_action": transition.fallback_action,
                },
                record=transition_state(transition, breaker.config, key, version),
            )
        ]
        alert = alert_change(
            breaker.firing,
            transition,
            breaker.config,
            breaker.identity,
            event_id=event_id,
            policy_version=version,
        )
        if alert is not None:
            breaker.firing = alert if alert.ends_at is None else None
            decisions.append(
                AlertDecision(
                    kernel=Kernel.BREAKER,
                    key=key,
                    ts_ms=transition.at_ms,
                    event_id=event_id,
                    policy_version=version,
                    alert=alert,
                )
            )
        return decisions

    def _published(self, key: str, breaker: Breaker, at_ms: int) -> BreakerState:
        return published_state(
            breaker.state,
            breaker.config,
            key=key,
            policy_version=self.policy.version,
            updated_at_ms=at_ms,
        )

    def state_of(self, key: str) -> BreakerState | None:
        breaker = self._breakers.get(key)
        return None if breaker is None else self._published(key, breaker, breaker.last_ts_ms)


def _retry_after_ms(event: ToolInvocation) -> float | None:
    """The vendor's Retry-After for a rate-limited call, when the producer passed it along:
    `retry_after_ms`, or `retry_after_s` (the HTTP header's unit), as extra fields (kept in
    `attributes`). Unparseable values are ignored: the call still counts as a failure."""
    attributes = event.attributes
    for name, scale in (("retry_after_ms", 1.0), ("retry_after_s", 1000.0)):
        raw = attributes.get(name)
        if raw is not None:
            try:
                value = float(raw) * scale
            except ValueError:
                return None
            return value if math.isfinite(value) and value > 0 else None
    return None


# States in which a clock tick changes nothing unless the window or a trip condition is
# time-based: skipping those breakers keeps a tick O(breakers that wait), not O(breakers).
_CLOCK_IDLE = frozenset(
    {
        CircuitState.CLOSED,
        CircuitState.METRICS_ONLY,
        CircuitState.DISABLED,
        CircuitState.FORCED_OPEN,
    }
)


def _time_matters(breaker: Breaker) -> bool:
    """Whether a clock tick can change `breaker` (exactly what `step` would do with it)."""
    if breaker.state.state not in _CLOCK_IDLE:
        return True  # OPEN waits for retry_at, HALF_OPEN for its maximum wait
    return breaker.config.sliding_window_type is WindowType.TIME or bool(
        breaker.config.trip_conditions
    )


def transition_state(
    transition: Transition, config: BreakerConfig, key: str, policy_version: str
) -> BreakerState:
    """The breaker-state record of one transition: the state entered, with the evidence that
    decided it (several transitions in one step each get their own record)."""
    return state_record(
        key=key,
        state=transition.to_state,
        since_ms=transition.at_ms,
        retry_at_ms=transition.retry_at_ms,
        attempt=transition.attempt,
        evidence=transition.evidence,
        reason=transition.reason,
        config=config,
        policy_version=policy_version,
        updated_at_ms=transition.at_ms,
    )


def _rfc3339_or_none(ms: int | None) -> str | None:
    return None if ms is None else rfc3339_ms(ms)


def apply_batch(
    engine: BreakerEngine, events: Iterable[StreamEvent], *, ticks_apply: bool
) -> list[Decision]:
    """One ingested batch of a partition the engine serves: tool invocations (and their clock
    ticks, which move time) or latency events of the same partition number (whose ticks do
    not: time moves in the tool-invocations partition's order only)."""
    apply = engine.apply
    decisions: list[Decision] = []
    for event in events:
        if ticks_apply or type(event) is not ClockTick:
            decisions += apply(event)
    return decisions
