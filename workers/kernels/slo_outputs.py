"""What the burn-rate SLO kernel (`workers.kernels.slo.SloTracker`) decides, and its state.

Small immutable records the shell turns into alerts, audit records and published state. Times
are event-time epoch milliseconds; burn rates are `error ratio / (1 - target)` (0.0 for an
empty window, never NaN or infinity).
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.kernels.slo_config import BurnRateTier


@dataclass(frozen=True, slots=True)
class BurnAlertFired:
    """The first tier of its notify kind started firing: one alert per kind (page, ticket) is
    open at a time. `tier` is the highest-factor tier of that kind firing at `ts_ms`."""

    tier: BurnRateTier
    ts_ms: int
    long_burn: float
    short_burn: float
    error_budget_remaining: float
    """Of the period at `ts_ms` (1.0 untouched, negative once overspent)."""


@dataclass(frozen=True, slots=True)
class BurnAlertResolved:
    """No tier of the alert's notify kind fires any more. `tier` is the one it fired with;
    the burn rates are that tier's at `ts_ms`."""

    tier: BurnRateTier
    ts_ms: int
    started_ms: int
    long_burn: float
    short_burn: float
    error_budget_remaining: float
    """Of the period at `ts_ms`: what the resolution reports, not what the firing saw."""


@dataclass(frozen=True, slots=True)
class NoDataFired:
    """No valid event for `no_data_ms` of event time: `ts_ms` is exactly that deadline."""

    ts_ms: int
    last_event_ms: int | None
    """The last valid event counted; None when there never was one."""


@dataclass(frozen=True, slots=True)
class NoDataResolved:
    ts_ms: int
    started_ms: int


@dataclass(frozen=True, slots=True)
class SloPeriodClosed:
    """A calendar period ended (event time reached `period_end_ms`): its exact totals."""

    ts_ms: int
    period_start_ms: int
    period_end_ms: int
    label: str
    good: int
    valid: int
    attainment: float | None
    """good / valid; None when the period had no valid event."""
    met: bool | None
    """attainment >= target; None when the period had no valid event."""


@dataclass(frozen=True, slots=True)
class LateCounts:
    """Counts too old to be counted anywhere (older than the longest window, or before the
    current calendar period, or in a time slice already closed): reported, never counted.
    `ts_ms` is the counts' own event time."""

    ts_ms: int
    good: int
    valid: int


SloOutput = (
    BurnAlertFired | BurnAlertResolved | NoDataFired | NoDataResolved | SloPeriodClosed | LateCounts
)


@dataclass(frozen=True, slots=True)
class SloSnapshot:
    """An SLO's state at `updated_ms` (what the shell publishes)."""

    good: int
    """Good events (good slices, budgeting by timeslices) in the period."""
    valid: int
    error_budget_remaining: float
    """1 - bad / (error budget x valid): 1.0 with no valid events, negative once overspent."""
    burn_rates: dict[str, float]
    """Window name ("5m", "1h", see slo_config.window_name) -> burn rate over it."""
    firing: tuple[str, ...]
    """Names of the tiers firing, in config order."""
    alerting: dict[str, str]
    """Notify kind ("page", "ticket") -> the tier its open alert fired with."""
    time_to_exhaustion_ms: int | None
    """At the bad-event rate of the shortest tier's long window; 0 when exhausted, None when
    that rate is 0."""
    period_start_ms: int | None
    """The calendar period's bounds; None for a rolling period."""
    period_end_ms: int | None
    last_event_ms: int | None
    """Event time of the last valid event counted."""
    updated_ms: int | None
    """Event time the tracker has reached; None before any call."""
    late_events: int
    """Valid events reported late so far."""
