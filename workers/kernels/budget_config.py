"""Budget configuration (DESIGN §6): immutable, validated values for the budget kernel.

No I/O: the policy loader (workers.policies.budgets) builds these from a file, the kernel reads
them. Every quantity carries its unit in its name; a bad value raises ConfigError naming the
field and the value. Money is Decimal (exact), percentages of a limit are Decimal too, so a
threshold at 95 % of $1000 is exactly $950.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.limits import MAX_ATTRIBUTE_VALUE_LEN, MAX_ID_LEN, MAX_LIST_ITEMS, MAX_TEXT_LEN
from schemas.state import BudgetPeriod
from schemas.types import Severity
from workers.errors import ConfigError
from workers.kernels.checks import check_int, preview
from workers.kernels.policy_limits import (
    MAX_ANOMALY_WINDOW_MS,
    MAX_BASELINE_WINDOWS,
    MAX_BURST_ALLOWANCE,
    MAX_FACTOR,
    MAX_GRACE_MS,
    MAX_POLICY_DURATION_MS,
    MAX_POLICY_TOKENS,
    MAX_POLICY_USD,
    MAX_RAPID_WINDOW_MS,
    MAX_RATE_WINDOW_MS,
    MAX_STREAK,
    MAX_THRESHOLDS,
    MAX_TRIPWIRE_PCT,
    MIN_CHECK_INTERVAL_MS,
)
from workers.kernels.rate_limit import DEFAULT_BUCKETS as RATE_LIMIT_SLICES
from workers.kernels.rolling_sum import to_nanos
from workers.kernels.spend_anomaly import DEFAULT_RAPID_BUCKET_MS

# Event fields a budget scope may select on (schemas.events: the attribution fields of tool
# invocations and cost events). The seeds' `department` is read as `team` by the loader.
SCOPE_FIELDS = ("vendor", "model", "team", "project", "user", "api_key_id", "org", "environment")

MAX_THRESHOLD_PCT = Decimal(1000)
"""A threshold above 10x the limit is a typo (95 written as 950 is plausible, 9500 is not)."""
DEFAULT_RATE_WINDOW_MS = 60_000
DEFAULT_ANOMALY_FACTOR = 2.0
DEFAULT_BASELINE_WINDOWS = 6
DEFAULT_RAPID_FRACTION = 0.10
DEFAULT_RAPID_WINDOW_MS = 900_000
DEFAULT_CHECK_INTERVAL_MS = 900_000
"""Tripwire check interval when the policy names none (the seeds do not): 15 minutes, the
same horizon as RESONTINEX's rapid-consumption rule, so a daily budget is checked 96 times."""
COST_UNIT_TOKENS = 1000
"""`cost_per_unit` prices are USD per this many tokens (the alpha-solver seed's figures are
OpenAI's per-1K-token list prices: gpt-4 0.03, gpt-3.5-turbo 0.002)."""

_GLOB_CHARS = frozenset("*?[")


class ThresholdAction(StrEnum):
    """What crossing a threshold does (the seeds' `alerts[].action`)."""

    NOTIFY = "notify"
    """Alert the threshold's recipients; the gateway action does not change."""
    THROTTLE = "throttle"
    """Alert, and the budget's action becomes at least THROTTLE for the rest of the period."""
    HALT = "halt"
    """Alert, and the action becomes HALT for the rest of the period (hard budgets only)."""
    ESCALATE = "escalate"
    """Alert at a higher severity (a human must decide); the gateway action does not change."""


# A halt stops every call in the budget's scope: somebody has to look now, hence a page.
# Escalate asks a human to decide (critical, not yet a page); notify and throttle are
# informational or self-correcting, hence warnings.
DEFAULT_SEVERITY: Mapping[ThresholdAction, Severity] = MappingProxyType(
    {
        ThresholdAction.NOTIFY: Severity.WARNING,
        ThresholdAction.THROTTLE: Severity.WARNING,
        ThresholdAction.ESCALATE: Severity.CRITICAL,
        ThresholdAction.HALT: Severity.PAGE,
    }
)


def _fail(owner: str, name: str, value: object, rule: str) -> ConfigError:
    # An enum member is shown as the policy writes it ('halt'), not as its Python repr.
    shown = value.value if isinstance(value, Enum) else value
    return ConfigError(f"{owner} {name} {rule}, not {preview(shown)}")


def _check_number(
    owner: str, name: str, value: object, low: float, *, low_open: bool, high: float = MAX_FACTOR
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _fail(owner, name, value, "must be a number")
    if (value <= low) if low_open else (value < low):
        raise _fail(owner, name, value, f"must be {'>' if low_open else '>='} {low}")
    if not value <= high:  # NaN too
        raise _fail(owner, name, value, f"must be <= {high:,}")


def _check_decimal(
    owner: str,
    name: str,
    value: object,
    *,
    zero_ok: bool = False,
    maximum: Decimal = MAX_POLICY_USD,
    nanos: bool = False,
) -> None:
    """A finite Decimal in (0, maximum] ([0, maximum] if zero_ok); with `nanos`, a whole number
    of nano-dollars (what the budget kernel counts in)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _fail(owner, name, value, "must be a finite Decimal")
    if value < 0 or (value == 0 and not zero_ok):
        raise _fail(owner, name, value, "must be >= 0" if zero_ok else "must be > 0")
    if value > maximum:
        raise _fail(owner, name, value, f"must be <= {maximum}")
    if nanos:
        try:
            to_nanos(value)
        except ValueError:
            raise _fail(owner, name, value, "must have at most 9 decimal places") from None


def _check_parameters(owner: str, name: str, params: object) -> None:
    """Names and values a ControlCommand carries (and an alert echoes): bounded as those are."""
    if not isinstance(params, Mapping) or not all(
        isinstance(k, str) and 0 < len(k) <= MAX_ID_LEN and isinstance(v, str)
        for k, v in params.items()
    ):
        raise _fail(owner, name, params, f"must map names (1-{MAX_ID_LEN} characters) to strings")
    if len(params) > MAX_LIST_ITEMS:
        raise _fail(owner, name, len(params), f"may hold at most {MAX_LIST_ITEMS} entries")
    if any(len(v) > MAX_TEXT_LEN for v in params.values()):
        raise _fail(owner, name, params, f"values must be at most {MAX_TEXT_LEN} characters")


def _check_strings(owner: str, name: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise _fail(owner, name, value, "must be a tuple of non-empty strings")


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """Fires once per budget and period when utilisation reaches `percent` of the limit
    (of limit_usd, and separately of limit_tokens when both are set: whichever gets there
    first). Build with `Threshold.of` to get the action's default severity."""

    percent: Decimal
    """Of the limit, (0, 1000]: 100 is the limit itself, 110 is 10 % over it."""
    action: ThresholdAction
    notify: tuple[str, ...] = ()
    """Recipients named by the policy (e-mail addresses in the seeds), carried in the alert."""
    severity: Severity

    def __post_init__(self) -> None:
        _check_decimal("threshold", "percent", self.percent, maximum=MAX_THRESHOLD_PCT)
        if not isinstance(self.action, ThresholdAction):
            raise _fail(
                "threshold", "action", self.action, "must be one of " + "|".join(ThresholdAction)
            )
        _check_strings("threshold", "notify", self.notify)
        if len(",".join(self.notify)) > MAX_ATTRIBUTE_VALUE_LEN:  # the alert's `notify` label
            rule = f"must be at most {MAX_ATTRIBUTE_VALUE_LEN} characters together"
            raise _fail("threshold", "notify", self.notify, rule)
        if not isinstance(self.severity, Severity):
            raise _fail(
                "threshold", "severity", self.severity, "must be one of " + "|".join(Severity)
            )

    @classmethod
    def of(
        cls,
        percent: Decimal,
        action: ThresholdAction,
        notify: tuple[str, ...] = (),
        severity: Severity | None = None,
    ) -> Threshold:
        """A threshold whose severity defaults to DEFAULT_SEVERITY[action]."""
        return cls(
            percent=percent,
            action=action,
            notify=notify,
            severity=DEFAULT_SEVERITY.get(action, Severity.WARNING)
            if severity is None
            else severity,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Requests and tokens allowed per sliding window of `window_ms` in event time (a true
    sliding window: at any instant t, the events in (t - window_ms, t]). With the default
    60 s window the names say what they mean; the budget's burst_allowance multiplies both."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    window_ms: int = DEFAULT_RATE_WINDOW_MS

    def __post_init__(self) -> None:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise _fail(
                "rate_limits", "requests_per_minute", None, "or tokens_per_minute must be set"
            )
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None:
                check_int("rate_limits", name, value, 1, MAX_POLICY_TOKENS)
        # The window is cut into RATE_LIMIT_SLICES slices of whole milliseconds.
        check_int("rate_limits", "window_ms", self.window_ms, RATE_LIMIT_SLICES, MAX_RATE_WINDOW_MS)
        if self.window_ms % RATE_LIMIT_SLICES:
            rule = f"must be a multiple of {RATE_LIMIT_SLICES} (its slices are window_ms / 60)"
            raise _fail("rate_limits", "window_ms", self.window_ms, rule)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyConfig:
    """Cost-anomaly detection (RESONTINEX's cost_anomaly_detection). Event time is cut into
    tumbling windows of `detection_window_ms`, aligned to the Unix epoch. When a window closes
    (event time, from a spend or clock event, reaches its end) its spend is compared with the
    mean spend of the `baseline_windows` windows before it; it is anomalous when
    spend > factor x mean. No verdict until `baseline_windows` windows have closed, and a zero
    mean never triggers (a first burst is rapid consumption's job). Alert only."""

    detection_window_ms: int
    factor: float = DEFAULT_ANOMALY_FACTOR
    """> 1: a factor of 1 or less would call every ordinary window an anomaly."""
    baseline_windows: int = DEFAULT_BASELINE_WINDOWS

    def __post_init__(self) -> None:
        check_int(
            "anomaly", "detection_window_ms", self.detection_window_ms, 1, MAX_ANOMALY_WINDOW_MS
        )
        _check_number("anomaly", "factor", self.factor, 1, low_open=True)
        check_int("anomaly", "baseline_windows", self.baseline_windows, 1, MAX_BASELINE_WINDOWS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RapidConsumptionConfig:
    """RESONTINEX's rapid_budget_consumption_rate ("10% in 15 minutes"): triggers when the
    spend in the sliding window (t - window_ms, t] exceeds fraction x limit (limit_usd; the
    token limit for token-only budgets). Fires once per episode: it resolves when the window
    falls back under the fraction."""

    fraction: float = DEFAULT_RAPID_FRACTION
    window_ms: int = DEFAULT_RAPID_WINDOW_MS
    action: ThresholdAction = ThresholdAction.NOTIFY
    """THROTTLE: the budget throttles while triggered (RESONTINEX lists the rule under
    automatic_restrictions); NOTIFY/ESCALATE: alert only. HALT is not allowed: a burst is not
    an exhausted budget."""

    def __post_init__(self) -> None:
        _check_number("rapid_consumption", "fraction", self.fraction, 0, low_open=True, high=1)
        # Summed in one-minute slices: a whole number of them, at most a day's.
        slice_ms = DEFAULT_RAPID_BUCKET_MS
        check_int("rapid_consumption", "window_ms", self.window_ms, slice_ms, MAX_RAPID_WINDOW_MS)
        if self.window_ms % slice_ms:
            rule = f"must be a whole number of minutes ({slice_ms} ms)"
            raise _fail("rapid_consumption", "window_ms", self.window_ms, rule)
        if not isinstance(self.action, ThresholdAction) or self.action is ThresholdAction.HALT:
            raise _fail(
                "rapid_consumption", "action", self.action, "must be notify|throttle|escalate"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TripwireConfig:
    """The seeds' budget_tripwire, on the budget named `target`.

    Check intervals: the target's period is cut into consecutive intervals of
    `check_interval_ms` from the period start (the last one ends at the period end, shorter if
    need be). An interval is checked when event time (a spend or clock event) reaches its end,
    so an interval with no spend is checked too (as zero spend).

    Plan: the pro-rata share of the limit for the interval,
    plan = limit x interval length / period length (limit_usd; limit_tokens and token spend for
    token-only budgets). Overspend of an interval, in percent: (spend - plan) / plan x 100.

    Breach: overspend > `breach_threshold_pct`. Trip: `consecutive_breach_limit` breaches in
    consecutive intervals (any non-breaching interval restarts the count); the kernel then
    emits a ControlCommand on `control` with `downgrade_parameters` for the target's scope,
    plus an alert and an audit record. Further breaches while tripped emit nothing new.

    Normal operation: a checked interval, while tripped, with overspend <=
    `recovery_threshold_pct`. Recovery: `consecutive_normal_operations` normal intervals in a
    row (an interval between the two thresholds restarts this count; a breach restarts it and
    the breach clock) and event time - end of the last breaching interval >=
    `time_since_last_breach_ms`; the kernel then emits a ControlCommand restoring the
    parameters, resolves the alert and audits. A period rollover ends neither state: the
    count continues into the next period's intervals."""

    target: str
    breach_threshold_pct: Decimal
    consecutive_breach_limit: int
    recovery_threshold_pct: Decimal
    """<= breach_threshold_pct: the gap between the two is the hysteresis band."""
    downgrade_parameters: Mapping[str, str]
    """Carried verbatim in the downgrade command (names and values as the policy writes them);
    the restoring command names the same keys."""
    consecutive_normal_operations: int = 1
    """>= 1, so recovery always needs at least one interval under the recovery threshold."""
    time_since_last_breach_ms: int = 0
    check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise _fail("tripwire", "target", self.target, "must name a budget")
        _check_decimal(
            "tripwire", "breach_threshold_pct", self.breach_threshold_pct, maximum=MAX_TRIPWIRE_PCT
        )
        _check_decimal(
            "tripwire",
            "recovery_threshold_pct",
            self.recovery_threshold_pct,
            zero_ok=True,
            maximum=MAX_TRIPWIRE_PCT,
        )
        if self.recovery_threshold_pct > self.breach_threshold_pct:
            raise _fail(
                "tripwire",
                "recovery_threshold_pct",
                self.recovery_threshold_pct,
                f"must be <= breach_threshold_pct ({self.breach_threshold_pct})",
            )
        streaks = ("consecutive_breach_limit", "consecutive_normal_operations")
        for name in streaks:
            check_int("tripwire", name, getattr(self, name), 1, MAX_STREAK)
        check_int(
            "tripwire",
            "time_since_last_breach_ms",
            self.time_since_last_breach_ms,
            0,
            MAX_POLICY_DURATION_MS,
        )
        # While tripped, every interval is checked in turn: not more often than every second.
        check_int(
            "tripwire",
            "check_interval_ms",
            self.check_interval_ms,
            MIN_CHECK_INTERVAL_MS,
            MAX_POLICY_DURATION_MS,
        )
        params = self.downgrade_parameters
        _check_parameters("tripwire", "downgrade_parameters", params)
        assert isinstance(params, Mapping)
        object.__setattr__(self, "downgrade_parameters", MappingProxyType(dict(params)))

    def __hash__(self) -> int:
        # The generated hash would hash the mapping proxy (unhashable); equal values still
        # hash alike because these fields are part of equality.
        return hash((self.target, self.breach_threshold_pct, self.consecutive_breach_limit))


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetConfig:
    """One budget: a scope, a period, limits and what happens as spend approaches them.

    Hard budgets halt: at a halt threshold, and in any case once spend reaches
    limit x burst_allowance (USD or tokens). Soft budgets never halt: their thresholds alert
    and a throttle threshold throttles. Thresholds act at their own percent of the limit;
    burst_allowance moves only the implicit hard stop, and multiplies the rate limits."""

    budget_id: str
    scope: Mapping[str, str] = field(default_factory=dict)
    """Event field -> fnmatch glob (case-sensitive); every entry must match. Empty: global."""
    split_by: tuple[str, ...] = ()
    """Scope fields whose values split the budget into one state per distinct combination
    (("user",): every user has the whole limit); empty: all matching events share one state.
    Each must also be in `scope` (use "*" to take every value)."""
    period: BudgetPeriod
    tz: str = "UTC"
    """IANA zone in which calendar periods start (midnight, the 1st, ...), DST included."""
    week_start: int = 0
    """First day of a WEEKLY period: 0 = Monday ... 6 = Sunday (date.weekday())."""
    rolling_ms: int | None = None
    """ROLLING periods only (and required there): spend over (t - rolling_ms, t]."""
    grace_ms: int
    """How long after its end a period still takes late events (by event time); then it
    closes with a final audited total and later events are counted and audited as late."""
    limit_usd: Decimal | None = None
    limit_tokens: int | None = None
    opening_spend_usd: Decimal = Decimal(0)
    """Spend already made when the budget is introduced mid-period (the seeds' current_spend);
    counts in the first period only."""
    hard: bool = False
    burst_allowance: Decimal = Decimal(1)
    thresholds: tuple[Threshold, ...] = ()
    """Sorted by percent on construction; percents are unique."""
    rate_limits: RateLimits | None = None
    anomaly: AnomalyConfig | None = None
    rapid_consumption: RapidConsumptionConfig | None = None
    tripwire: TripwireConfig | None = None
    cost_per_unit: Mapping[str, Decimal] = field(default_factory=dict)
    """model -> USD per COST_UNIT_TOKENS tokens: prices events that report tokens but no cost."""
    approval_required_above_usd: Decimal | None = None
    """A single event costing more raises an escalate alert: approval is a gateway's job, the
    stream can only report calls that went ahead above it."""
    tags: tuple[str, ...] = ()

    # Derived once for `matches`, which runs for every budget on every event.
    _exact: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _globs: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate_identity()
        self._validate_period()
        self._validate_limits()
        self._validate_extras()
        derive = object.__setattr__  # frozen: the dataclass way to set derived fields
        scope = dict(sorted(self.scope.items()))
        derive(self, "scope", MappingProxyType(scope))
        derive(self, "cost_per_unit", MappingProxyType(dict(self.cost_per_unit)))
        derive(self, "thresholds", tuple(sorted(self.thresholds, key=lambda t: t.percent)))
        derive(self, "_exact", tuple((k, v) for k, v in scope.items() if not _is_glob(v)))
        derive(
            self,
            "_globs",
            tuple((k, re.compile(fnmatch.translate(v))) for k, v in scope.items() if _is_glob(v)),
        )

    def _validate_identity(self) -> None:
        bid = self.budget_id
        if not isinstance(bid, str) or not 0 < len(bid) <= MAX_ID_LEN:
            raise _fail("budget", "budget_id", bid, f"must be 1-{MAX_ID_LEN} characters")
        if not isinstance(self.scope, Mapping):
            raise _fail("budget", "scope", self.scope, "must map event fields to globs")
        for key, value in self.scope.items():
            if key not in SCOPE_FIELDS:
                raise _fail(
                    "budget", "scope", key, "field must be one of " + ", ".join(SCOPE_FIELDS)
                )
            if not isinstance(value, str) or not value:
                raise _fail("budget", f"scope.{key}", value, "must be a non-empty string")
        _check_strings("budget", "tags", self.tags)
        _check_strings("budget", "split_by", self.split_by)
        for name in self.split_by:
            if name not in self.scope:
                raise _fail("budget", "split_by", name, "must be a scope field (scope it '*')")
        if len(set(self.split_by)) != len(self.split_by):
            raise _fail("budget", "split_by", self.split_by, "names a field twice")

    def _validate_period(self) -> None:
        if not isinstance(self.period, BudgetPeriod):
            raise _fail("budget", "period", self.period, "must be one of " + "|".join(BudgetPeriod))
        rolling = self.period is BudgetPeriod.ROLLING
        if rolling:
            check_int("budget", "rolling_ms", self.rolling_ms, 1, MAX_POLICY_DURATION_MS)
        elif self.rolling_ms is not None:
            raise _fail("budget", "rolling_ms", self.rolling_ms, "is only for period rolling")
        if not isinstance(self.tz, str) or _zone(self.tz) is None:
            raise _fail("budget", "tz", self.tz, "must be an IANA time zone (e.g. Europe/Berlin)")
        check_int("budget", "week_start", self.week_start, 0)
        if self.week_start > 6:
            raise _fail("budget", "week_start", self.week_start, "must be 0 (Monday) - 6 (Sunday)")
        check_int("budget", "grace_ms", self.grace_ms, 0, MAX_GRACE_MS)

    def _validate_limits(self) -> None:
        if self.limit_usd is None and self.limit_tokens is None:
            raise _fail("budget", "limit_usd", None, "or limit_tokens must be set")
        if self.limit_usd is not None:
            _check_decimal("budget", "limit_usd", self.limit_usd, nanos=True)
        if self.limit_tokens is not None:
            check_int("budget", "limit_tokens", self.limit_tokens, 1, MAX_POLICY_TOKENS)
        _check_decimal(
            "budget", "opening_spend_usd", self.opening_spend_usd, zero_ok=True, nanos=True
        )
        if not isinstance(self.hard, bool):
            raise _fail("budget", "hard", self.hard, "must be true or false")
        _check_decimal(
            "budget", "burst_allowance", self.burst_allowance, maximum=MAX_BURST_ALLOWANCE
        )
        if len(self.thresholds) > MAX_THRESHOLDS:
            rule = f"may list at most {MAX_THRESHOLDS}"
            raise _fail("budget", "thresholds", len(self.thresholds), rule)
        if self.burst_allowance < 1:
            raise _fail("budget", "burst_allowance", self.burst_allowance, "must be >= 1")
        seen: set[Decimal] = set()
        for threshold in self.thresholds:
            if not isinstance(threshold, Threshold):
                raise _fail("budget", "thresholds", threshold, "must hold Threshold values")
            if threshold.percent in seen:
                raise _fail("budget", "thresholds", threshold.percent, "percent appears twice")
            seen.add(threshold.percent)
            if threshold.action is ThresholdAction.HALT and not self.hard:
                raise _fail(
                    "budget", "thresholds", threshold.percent, "halts, so the budget must be hard"
                )

    def _validate_extras(self) -> None:
        parts = (
            ("rate_limits", RateLimits),
            ("anomaly", AnomalyConfig),
            ("rapid_consumption", RapidConsumptionConfig),
            ("tripwire", TripwireConfig),
        )
        for name, cls in parts:
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise _fail("budget", name, value, f"must be a {cls.__name__}")
        if self.tripwire is not None and self.tripwire.target != self.budget_id:
            raise _fail(
                "budget", "tripwire.target", self.tripwire.target, "must be the budget's id"
            )
        if not isinstance(self.cost_per_unit, Mapping):
            raise _fail("budget", "cost_per_unit", self.cost_per_unit, "must map models to USD")
        for model, price in self.cost_per_unit.items():
            if not isinstance(model, str) or not model:
                raise _fail("budget", "cost_per_unit", model, "model must be a non-empty string")
            _check_decimal("budget", f"cost_per_unit.{model}", price)
        if self.approval_required_above_usd is not None:
            _check_decimal(
                "budget",
                "approval_required_above_usd",
                self.approval_required_above_usd,
                nanos=True,
            )

    def __hash__(self) -> int:
        # As TripwireConfig: usable as a dict key or cache argument despite its mappings.
        return hash((self.budget_id, self.period, self.limit_usd, self.limit_tokens))

    @property
    def scope_fields(self) -> tuple[str, ...]:
        return tuple(self.scope)

    @property
    def is_global(self) -> bool:
        return not self.scope

    def state_key(self, fields: Mapping[str, str | None]) -> str:
        """The key of the budget state an event (that `matches`) counts against:
        "<budget_id>" or, split by user and team, "<budget_id>/<user>/<team>"."""
        if not self.split_by:
            return self.budget_id
        return "/".join([self.budget_id, *[fields.get(name) or "" for name in self.split_by]])

    def matches(self, fields: Mapping[str, str | None]) -> bool:
        """Whether an event with these attribution fields counts against this budget: every
        scope entry must match the event's value; an absent, None or empty value never does."""
        for name, wanted in self._exact:
            if fields.get(name) != wanted:
                return False
        for name, pattern in self._globs:
            value = fields.get(name)
            if not value or pattern.match(value) is None:
                return False
        return True


def _is_glob(value: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(value)
