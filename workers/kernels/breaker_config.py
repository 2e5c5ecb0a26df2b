"""Circuit-breaker configuration: an immutable, validated value with Resilience4j's names.

Every field carries its unit; a bad value raises ConfigError naming the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from schemas.types import Severity
from workers.errors import ConfigError
from workers.kernels.breaker_windows import CountWindow, TimeWindow, Window
from workers.kernels.checks import preview
from workers.kernels.policy_limits import (
    FALLBACK_ACTIONS,
    MAX_BREAKER_WINDOW_S,
    MAX_CONSECUTIVE,
    MAX_COUNT,
    MAX_FACTOR,
    MAX_LATENCY_MS,
    MAX_POLICY_USD,
    MAX_STREAK,
    MAX_TRIP_CONDITIONS,
    MAX_WAIT_MS,
    MAX_WINDOW_SLOTS,
)

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


class WindowType(StrEnum):
    COUNT = "count"
    TIME = "time"


class TripMetric(StrEnum):
    """What a RESONTINEX-style trip condition measures over its own evaluation window."""

    LATENCY_P95 = "latency_p95"
    """95th percentile (ms) of the durations of recorded calls and of `Latency` events (total
    latency measurements), from a 1 % relative-error sketch; violated when > threshold."""
    SUCCESS_RATE = "success_rate"
    """Successful / recorded calls (fraction); violated when < threshold."""
    ERROR_RATE = "error_rate"
    """Failed / recorded calls (fraction); violated when > threshold."""


@dataclass(frozen=True, slots=True)
class TripCondition:
    """Open when `metric` violates `threshold` in `consecutive_violations` evaluation windows
    in a row. Windows are tumbling, `window_ms` long, aligned to the epoch, in event time; a
    window is evaluated when event time (a call, latency or clock event) reaches its end. A
    window with fewer than `minimum_calls` samples neither violates nor breaks the streak
    (the exact rules: workers.kernels.breaker_trips)."""

    metric: TripMetric
    threshold: float
    """ms for LATENCY_P95; a fraction in [0, 1] for the rates."""
    consecutive_violations: int = 1
    window_ms: int = 300_000
    minimum_calls: int = 1
    name: str | None = None
    """The policy's own name for the metric (e.g. fusion_overlay_latency_p95), for evidence."""

    def __post_init__(self) -> None:
        if self.metric not in tuple(TripMetric):
            raise _fail(
                "trip_conditions.metric", self.metric, "must be one of " + ", ".join(TripMetric)
            )
        if self.metric is TripMetric.LATENCY_P95:
            if not 0 < self.threshold <= MAX_LATENCY_MS:
                rule = f"must be > 0 and <= {MAX_LATENCY_MS:,.0f} ms"
                raise _fail("trip_conditions.threshold", self.threshold, rule)
        elif not 0 <= self.threshold <= 1:
            raise _fail("trip_conditions.threshold", self.threshold, "must be in [0, 1]")
        caps = (
            ("consecutive_violations", MAX_STREAK),
            ("window_ms", MAX_WAIT_MS),
            ("minimum_calls", MAX_COUNT),
        )
        for name, maximum in caps:
            _check_int(f"trip_conditions.{name}", getattr(self, name), 1, maximum)


def _fail(name: str, value: object, rule: str) -> ConfigError:
    return ConfigError(f"breaker config {name} {rule}, not {preview(value)}")


def _check_int(name: str, value: object, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, value, f"must be an integer >= {minimum}")
    if value > maximum:
        raise _fail(name, value, f"must be at most {maximum:,}")


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
    success_threshold: int = 0
    """Seeds: HALF_OPEN closes after this many successful trial calls (0: Resilience4j's
    failure-rate evaluation of the permitted calls decides instead)."""
    consecutive_success_threshold: int = 0
    """Seeds (RESONTINEX): ... and the last this-many trial calls must all have succeeded."""
    trip_conditions: tuple[TripCondition, ...] = ()
    fallback_action: str | None = None
    alert_on_open: bool = True
    """Whether opening fires an alert (seeds' `alert_on_open`); transitions are audited anyway."""
    alert_severity: Severity = Severity.CRITICAL
    """Severity of the breaker-open alert (seeds' alerting.circuit_open.severity)."""

    # Derived once from the fields above (the kernel reads them on every call; properties and
    # Decimal arithmetic there cost more than the rest of a step). Not part of the value.
    _closed_minimum_calls: int = field(init=False, repr=False, compare=False)
    _half_open_minimum_calls: int = field(init=False, repr=False, compare=False)
    _seed_half_open: bool = field(init=False, repr=False, compare=False)
    _cost_threshold_ratio: tuple[int, int] | None = field(init=False, repr=False, compare=False)
    _seed_closed_triggers: bool = field(init=False, repr=False, compare=False)
    """Whether CLOSED checks more than the rates (consecutive failures, cost)."""

    def __post_init__(self) -> None:
        self._validate()
        derive = object.__setattr__  # frozen: the dataclass way to set derived fields
        if self.sliding_window_type is WindowType.COUNT:
            # Resilience4j caps the minimum at the size for count windows only.
            closed = min(self.minimum_number_of_calls, self.sliding_window_size)
        else:
            closed = self.minimum_number_of_calls
        derive(self, "_closed_minimum_calls", closed)
        derive(
            self,
            "_half_open_minimum_calls",
            min(self.minimum_number_of_calls, self.permitted_calls_in_half_open),
        )
        derive(
            self,
            "_seed_half_open",
            self.success_threshold > 0 or self.consecutive_success_threshold > 0,
        )
        threshold = self.cost_threshold_usd
        derive(
            self,
            "_cost_threshold_ratio",
            None if threshold is None else threshold.as_integer_ratio(),
        )
        derive(self, "_seed_closed_triggers", self.failure_threshold > 0 or threshold is not None)

    def _validate(self) -> None:
        for name in ("failure_rate_threshold_pct", "slow_call_rate_threshold_pct"):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise _fail(name, value, "must be in (0, 100]")
        # (name, minimum, maximum): the caps bound memory and time per key (policy_limits).
        int_fields = (
            ("sliding_window_size", 1, MAX_BREAKER_WINDOW_S),  # its own cap: _validate_window
            ("time_bucket_s", 1, MAX_BREAKER_WINDOW_S),
            ("minimum_number_of_calls", 1, MAX_COUNT),
            ("permitted_calls_in_half_open", 1, MAX_WINDOW_SLOTS),
            ("wait_in_open_ms", 1, MAX_WAIT_MS),
            ("allowed_lateness_ms", 0, MAX_WAIT_MS),
            ("max_wait_in_half_open_ms", 0, MAX_WAIT_MS),
            ("failure_threshold", 0, MAX_CONSECUTIVE),
            ("success_threshold", 0, MAX_CONSECUTIVE),
            ("consecutive_success_threshold", 0, MAX_CONSECUTIVE),
        )
        for name, minimum, maximum in int_fields:
            if name == "sliding_window_size":
                _check_int(name, self.sliding_window_size, 1, 2**63)
            else:
                _check_int(name, getattr(self, name), minimum, maximum)
        self._validate_window()
        self._validate_extras()
        permitted = self.permitted_calls_in_half_open
        for name in ("success_threshold", "consecutive_success_threshold"):
            if getattr(self, name) > permitted:
                raise _fail(
                    name,
                    getattr(self, name),
                    f"must be <= permitted_calls_in_half_open ({permitted})",
                )
        if self.alert_severity not in tuple(Severity):
            raise _fail(
                "alert_severity", self.alert_severity, "must be one of " + ", ".join(Severity)
            )

    def _validate_window(self) -> None:
        """A window holds at most MAX_WINDOW_SLOTS slots: calls, or time buckets."""
        size = self.sliding_window_size
        if self.sliding_window_type not in tuple(WindowType):
            raise _fail("sliding_window_type", self.sliding_window_type, "must be count|time")
        if self.sliding_window_type is WindowType.COUNT:
            if size > MAX_WINDOW_SLOTS:
                rule = f"must be at most {MAX_WINDOW_SLOTS:,} calls for a count window"
                raise _fail("sliding_window_size", size, rule)
            return
        if size > MAX_BREAKER_WINDOW_S:
            rule = f"must be at most {MAX_BREAKER_WINDOW_S:,} seconds for a time window"
            raise _fail("sliding_window_size", size, rule)
        if size % self.time_bucket_s:
            rule = f"must be a multiple of time_bucket_s ({self.time_bucket_s})"
            raise _fail("sliding_window_size", size, rule)
        if size // self.time_bucket_s > MAX_WINDOW_SLOTS:
            smallest = -(-size // MAX_WINDOW_SLOTS)
            rule = (
                f"must be at most {MAX_WINDOW_SLOTS:,} buckets of time_bucket_s "
                f"({self.time_bucket_s} s): use time_bucket_s >= {smallest} for this window"
            )
            raise _fail("sliding_window_size", size, rule)

    def _validate_extras(self) -> None:
        """Waits, durations, money and what the seeds' schema enumerates."""
        wait, longest = self.wait_in_open_ms, self.max_wait_in_open_ms
        if longest is not None:
            _check_int("max_wait_in_open_ms", longest, 1, MAX_WAIT_MS)
            if longest < wait:
                raise _fail("max_wait_in_open_ms", longest, f"must be >= wait_in_open_ms ({wait})")
        if not 0 < self.slow_call_duration_ms <= MAX_LATENCY_MS:
            rule = f"must be > 0 and <= {MAX_LATENCY_MS:,.0f}"
            raise _fail("slow_call_duration_ms", self.slow_call_duration_ms, rule)
        if not (math.isfinite(self.backoff_multiplier) and self.backoff_multiplier >= 1):
            raise _fail("backoff_multiplier", self.backoff_multiplier, "must be >= 1")
        if self.backoff_multiplier > MAX_FACTOR:
            rule = f"must be at most {MAX_FACTOR:,.0f}"
            raise _fail("backoff_multiplier", self.backoff_multiplier, rule)
        threshold = self.cost_threshold_usd
        if threshold is not None and not (
            threshold.is_finite() and 0 < threshold <= MAX_POLICY_USD
        ):
            raise _fail("cost_threshold_usd", threshold, f"must be > 0 and <= {MAX_POLICY_USD:,}")
        if self.fallback_action is not None and self.fallback_action not in FALLBACK_ACTIONS:
            rule = "must be one of " + "|".join(FALLBACK_ACTIONS)
            raise _fail("fallback_action", self.fallback_action, rule)
        if len(self.trip_conditions) > MAX_TRIP_CONDITIONS:
            rule = f"may list at most {MAX_TRIP_CONDITIONS}"
            raise _fail("trip_conditions", len(self.trip_conditions), rule)

    @property
    def closed_minimum_calls(self) -> int:
        """Resilience4j caps the minimum at the size for count windows only."""
        return self._closed_minimum_calls

    @property
    def half_open_minimum_calls(self) -> int:
        return self._half_open_minimum_calls

    @property
    def seed_half_open(self) -> bool:
        """Whether HALF_OPEN is decided by the seeds' success thresholds (see breaker.py)."""
        return self._seed_half_open

    def new_window(self) -> Window:
        """The CLOSED / METRICS_ONLY window; it sums cost only when a threshold needs it."""
        track_cost = self.cost_threshold_usd is not None
        if self.sliding_window_type is WindowType.COUNT:
            return CountWindow(self.sliding_window_size, track_cost=track_cost)
        return TimeWindow(
            self.sliding_window_size,
            self.time_bucket_s,
            self.allowed_lateness_ms,
            track_cost=track_cost,
        )

    def wait_ms(self, attempt: int) -> int:
        """Wait in OPEN before the `attempt`-th (1-based) half-open trial."""
        wait = self.wait_in_open_ms * self.backoff_multiplier ** max(attempt - 1, 0)
        if self.max_wait_in_open_ms is not None:
            wait = min(wait, self.max_wait_in_open_ms)
        return round(wait)
