"""Routes stream events to breaker kernels and turns their transitions into decisions.

One engine holds the breakers of one stream (an input partition live, a whole file in
`replay`): a clock tick moves time for every breaker it holds. No I/O, no clock: the Faust
sink and `guardstream replay` both drive this same code, which is what makes replay exact.

Breaker keys come from producers (vendor, tool), so an engine holds at most `limit.max_keys`
of them (`CappedMap`). At the cap, the least recently used idle breaker (closed, nothing in
its window as of the event time reached, no failure streak: a new one would decide the same
for in-order input) is evicted to make room; when none is idle the call is judged by its
policy's overflow breaker (`~overflow/<policy_id>`: every refused key's calls together, so
failures among them still open a breaker), and a `cardinality_limit` alert fires once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from schemas.alerts import Alert
from schemas.clock import ClockTick
from schemas.events import LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride, OverrideAction
from schemas.state import BreakerState, CircuitState
from schemas.stream import StreamEvent
from schemas.types import epoch_ms, rfc3339_ms
from workers.alert_book import AlertBook
from workers.breakers.alerts import BreakerIdentity, alert_change
from workers.cardinality import OVERFLOW_LABEL, alarm_decisions
from workers.decisions import AlertDecision, Decision, Kernel, TransitionDecision, stamp
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
from workers.kernels.breaker_windows import TimeWindow
from workers.kernels.key_cap import CappedMap, KeyCaps, KeyLimit, StateKind


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
    evicted: bool = False
    """Set when the engine evicted it to make room: routes cached to it are stale."""


_OVERRIDES = {
    OverrideAction.FORCE_OPEN: Override.FORCE_OPEN,
    OverrideAction.DISABLE: Override.DISABLE,
    OverrideAction.METRICS_ONLY: Override.METRICS_ONLY,
    OverrideAction.RESET: Override.RESET,
}


class _Disabled:
    """The route of a (vendor, tool) pair whose policy entry is disabled. `evicted` like a
    stale route, so the hot path tells both from a live breaker with one attribute."""

    evicted = True


_DISABLED: Any = _Disabled()

# The route cache holds at most this many (vendor, tool) pairs (or twice the cap, if more),
# and starts over when full: new tool names cannot grow it.
ROUTE_CACHE_SIZE = 65_536

_OVERFLOW_SUMMARY = (
    "idle breakers are evicted to make room, least recently used first; with none idle, a "
    "new key's calls are judged by its policy's overflow breaker (~overflow/<policy_id>)"
)


class BreakerEngine:
    def __init__(self, policy: BreakerRouting, limit: KeyLimit | None = None) -> None:
        """`limit`: at most this many breaker keys (default: `KeyCaps()`'s)."""
        self.policy = policy
        self.keys: CappedMap[Breaker] = CappedMap(
            limit or KeyCaps().whole(StateKind.BREAKERS), idle=_idle, on_evict=_evicted
        )
        # policy_id -> the breaker of the keys refused at the cap, created on first refusal.
        self._overflow: dict[str, Breaker] = {}
        # (vendor, tool) -> its breaker (or _DISABLED), so routing runs once per pair; pairs
        # judged by an overflow breaker are not cached (they may be admitted later).
        self._routes: dict[tuple[str, str], Breaker] = {}
        self._touch = self.keys.touch
        self._routes_max = max(ROUTE_CACHE_SIZE, 2 * self.keys.limit.max_keys)
        self._tick_ms = 0  # the latest clock tick's event time
        self._alerts = AlertBook(Kernel.BREAKER, policy.version)

    def __getstate__(self) -> dict[str, Any]:
        """Its state for a snapshot (`shell.snapshot`): the route cache and the bound
        `touch` are derived, and rebuilt by `__setstate__`."""
        state = dict(self.__dict__)
        del state["_touch"]
        state["_routes"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._touch = self.keys.touch

    def __len__(self) -> int:
        return len(self.keys) + len(self._overflow)

    def apply(self, event: StreamEvent) -> list[Decision]:
        """Feed one event (in stream order); returns the decisions it caused, often none."""
        if type(event) is ToolInvocation:  # the hot path: written out, no helper calls
            breaker = self._routes.get((event.vendor, event.tool))
            if breaker is None or breaker.evicted:
                if breaker is _DISABLED:
                    return []
                found, decisions = self._route(event.vendor, event.tool, event)
                if found is None:
                    return decisions
                breaker = found
            else:  # a cached route is an admitted breaker's
                decisions = None
                self._touch(breaker.identity.key)
            retry_after_ms = _retry_after_ms(event) if event.attributes else None
            config = breaker.config
            call = classify(event, config, retry_after_ms=retry_after_ms)
            breaker.state, transitions = step(breaker.state, config, call)
            if call.ts_ms > breaker.last_ts_ms:
                breaker.last_ts_ms = call.ts_ms
            if not transitions:
                return decisions or []
            return (decisions or []) + self._decisions(breaker, transitions, event.event_id)
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
        self._tick_ms = max(self._tick_ms, ts_ms)
        for breaker in self._breakers():
            if _time_matters(breaker):
                decisions.extend(self._step(breaker, tick, event_id))
        self.keys.sweep(ts_ms)  # after the tick: a breaker it closed may be idle now
        decisions += alarm_decisions(
            self._alerts, self.keys, ts_ms, event_id, overflow=_OVERFLOW_SUMMARY
        )
        return decisions

    def circuit_states(self) -> Iterator[CircuitState]:
        """Each breaker's state alone (metrics: no record built per scrape)."""
        for breaker in self._breakers():
            yield breaker.state.state

    def key_states(self) -> Iterator[tuple[str, CircuitState]]:
        """Each breaker's key and state (per-key metrics: no record built per scrape)."""
        for breaker in self._breakers():
            yield breaker.identity.key, breaker.state.state

    def states(self) -> Iterator[BreakerState]:
        """The published state of every breaker, as of the last event each one saw."""
        for breaker in self._breakers():
            yield self._published(breaker.identity.key, breaker, breaker.last_ts_ms)

    def _breakers(self) -> Iterator[Breaker]:
        """Every breaker held: the admitted ones in the order they came, then the overflow
        breakers in the order they came."""
        yield from self.keys.values()
        yield from self._overflow.values()

    def _latency(self, event: LatencyEvent) -> list[Decision]:
        observed = observe_latency(event)
        if observed is None:
            return []
        breaker, decisions = self._breaker(event.vendor, event.tool, event)
        if breaker is None:
            return decisions
        return decisions + self._step(breaker, observed, event.event_id)

    def _override(self, event: BreakerOverride) -> list[Decision]:
        breaker, decisions = self._breaker(event.vendor, event.tool, event)
        if breaker is None:
            return decisions  # a disabled policy entry: nothing to override
        command = Command(epoch_ms(event.ts), _OVERRIDES[event.action])
        # Who asked and why belong in the audit record of what it changed.
        asked = {"actor": event.actor, "override_reason": event.reason}
        return decisions + [
            replace(decision, details={**decision.details, **asked})
            if isinstance(decision, TransitionDecision)
            else decision
            for decision in self._step(breaker, command, event.event_id)
        ]

    def _breaker(
        self, vendor: str, tool: str, event: StreamEvent
    ) -> tuple[Breaker | None, list[Decision]]:
        """The breaker for a call, created on first sight (and marked used); None when its
        policy entry is disabled (`enabled: false`): such calls are not governed at all. At
        the cap, a new key's breaker is its policy's overflow breaker, and the decisions are
        the cardinality alert firing (once)."""
        cached = self._routes.get((vendor, tool))
        if cached is _DISABLED:
            return None, []
        if cached is not None and not cached.evicted:
            self._touch(cached.identity.key)
            return cached, []
        return self._route(vendor, tool, event)

    def _route(
        self, vendor: str, tool: str, event: StreamEvent
    ) -> tuple[Breaker | None, list[Decision]]:
        """`_breaker` for a pair with no live cached route (the hot path's miss: it has
        looked the cache up already)."""
        route = (vendor, tool)
        key = self.policy.key_for(vendor, tool)
        breaker = self.keys.get(key)
        decisions: list[Decision] = []
        if breaker is not None:
            self._touch(key)
        else:
            config = self.policy.resolve(vendor, tool)
            if not self.policy.enabled(config.policy_id):
                self._cache(route, _DISABLED)
                return None, []
            at_ms = max(epoch_ms(event.ts), self._tick_ms)
            identity = BreakerIdentity(key, vendor, tool)
            breaker = self.keys.admit(
                key, lambda: Breaker(identity, config, initial_state(config)), at_ms
            )
            # The cardinality alert, when admitting bound the cap (refused, or evicted).
            decisions = alarm_decisions(
                self._alerts, self.keys, at_ms, event.event_id, overflow=_OVERFLOW_SUMMARY
            )
            if breaker is None:  # refused: judged with the other refused keys
                return self._overflow_breaker(config), decisions
        self._cache(route, breaker)
        return breaker, decisions

    def _cache(self, route: tuple[str, str], breaker: Breaker) -> None:
        if len(self._routes) >= self._routes_max:
            self._routes.clear()
        self._routes[route] = breaker

    def _overflow_breaker(self, config: BreakerConfig) -> Breaker:
        breaker = self._overflow.get(config.policy_id)
        if breaker is None:
            key = f"{OVERFLOW_LABEL}/{config.policy_id}"
            identity = BreakerIdentity(key, OVERFLOW_LABEL, OVERFLOW_LABEL)
            breaker = self._overflow[config.policy_id] = Breaker(
                identity, config, initial_state(config)
            )
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
        made = stamp(Kernel.BREAKER, key, transition.at_ms, event_id, version)
        decisions: list[Decision] = [
            TransitionDecision(
                **made,
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
            decisions.append(AlertDecision(**made, alert=alert))
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
        breaker = self.keys.get(key)
        if breaker is None:
            breaker = next((b for b in self._overflow.values() if b.identity.key == key), None)
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


def _idle(breaker: Breaker, now_ms: int) -> bool:
    """Whether a new breaker would decide exactly as this one for calls from `now_ms` on:
    closed, no alert firing, no failure streak or trip condition state, and no call in its
    window any more (a count window only when empty)."""
    state = breaker.state
    if state.state is not CircuitState.CLOSED or breaker.firing is not None:
        return False
    if state.consecutive_failures or state.trips is not None:
        return False
    window = state.window
    if not window.calls:
        return True
    if not isinstance(window, TimeWindow):
        return False
    bucket_ms = window.bucket_s * 1000
    return breaker.last_ts_ms // bucket_ms <= now_ms // bucket_ms - window.buckets


def _evicted(breaker: Breaker) -> None:
    breaker.evicted = True


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
