"""The three breaker-policy shapes as pydantic models: syntax only (types, ranges, known keys).

Cross-field rules stay in the kernel's BreakerConfig, so they are written once; the converters
in `breaker_shapes` re-raise them with the file and path. guardstream's own shape forbids
unknown keys (a typo must not silently fall back to a default); the seed shapes allow them and
the converters record a note for each, because those files carry sections for other systems.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator

from schemas.types import Severity
from workers.kernels.breaker_config import TripMetric, WindowType
from workers.kernels.policy_limits import FALLBACK_ACTIONS
from workers.policies.fields import (
    OpenModel,
    OptBool,
    OptMoney,
    OptNonNegInt,
    OptPosInt,
    OptPosNumber,
    OptStringSet,
    OptText,
    StrictModel,
    Text,
    int_in,
    number,
    number_in,
    one_of,
)

# Optional fields validated by plain functions (see fields.py): an explicit `null` is an error,
# an omitted key leaves the layer below (file defaults, mode defaults, kernel) in charge.
OptPct = Annotated[float | None, PlainValidator(number_in(0, 100, low_open=True))]
OptNumber = Annotated[float | None, PlainValidator(number)]
OptMultiplier = Annotated[float | None, PlainValidator(number_in(1, None))]
OptFallback = Annotated[str | None, PlainValidator(one_of(FALLBACK_ACTIONS))]
# alpha-solver's json_schema_for_circuit_breakers.json bounds these (inclusive).
SeedCount = Annotated[int | None, PlainValidator(int_in(1, 100))]
SeedTimeoutS = Annotated[int | None, PlainValidator(int_in(1, 3600))]
SeedHalfOpenCalls = Annotated[int | None, PlainValidator(int_in(1, 10))]
SeedWindowS = Annotated[int | None, PlainValidator(int_in(10, 3600))]


class KeyMode(StrEnum):
    """Which event fields form a breaker's key (DESIGN §6: vendor/tool by default)."""

    VENDOR_TOOL = "vendor/tool"
    VENDOR = "vendor"
    TOOL = "tool"


class RuleSpec(StrictModel):
    vendor: Text = "*"
    tool: Text = "*"
    breaker: Text


@dataclass(frozen=True, slots=True)
class Rule:
    """A routing rule with its globs compiled once (fnmatch, case-sensitive everywhere)."""

    vendor: str
    tool: str
    breaker: str
    _vendor_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _tool_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_vendor_re", re.compile(fnmatch.translate(self.vendor)))
        object.__setattr__(self, "_tool_re", re.compile(fnmatch.translate(self.tool)))

    def matches(self, vendor: str, tool: str) -> bool:
        return bool(self._vendor_re.match(vendor) and self._tool_re.match(tool))


class Routing(BaseModel):
    """Top-level keys every shape may carry: how events find their breaker."""

    key: KeyMode = KeyMode.VENDOR_TOOL
    rules: list[RuleSpec] = []
    default: OptText = None


# --- guardstream's shape: BreakerConfig's own field names, units in the names ---


class GuardTrip(StrictModel):
    metric: TripMetric
    threshold: Annotated[float, PlainValidator(number)]  # range: by metric, in the kernel
    consecutive_violations: OptPosInt = None
    window_ms: OptPosInt = None
    minimum_calls: OptPosInt = None
    name: OptText = None


class GuardBreaker(StrictModel):
    enabled: OptBool = None
    failure_rate_threshold_pct: OptPct = None
    slow_call_rate_threshold_pct: OptPct = None
    slow_call_duration_ms: OptPosNumber = None
    sliding_window_type: WindowType | None = None
    sliding_window_size: OptPosInt = None
    time_bucket_s: OptPosInt = None
    allowed_lateness_ms: OptNonNegInt = None
    minimum_number_of_calls: OptPosInt = None
    permitted_calls_in_half_open: OptPosInt = None
    wait_in_open_ms: OptPosInt = None
    backoff_multiplier: OptMultiplier = None
    max_wait_in_open_ms: OptPosInt = None
    max_wait_in_half_open_ms: OptNonNegInt = None
    failure_threshold: OptNonNegInt = None
    error_types: OptStringSet = None
    exclude_errors: OptStringSet = None
    cost_threshold_usd: OptMoney = None
    success_threshold: OptNonNegInt = None
    consecutive_success_threshold: OptNonNegInt = None
    trip_conditions: list[GuardTrip] | None = None
    fallback_action: OptFallback = None
    alert_on_open: OptBool = None
    alert_severity: Severity | None = None


class GuardSpec(Routing):
    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: GuardBreaker = GuardBreaker()
    breakers: dict[str, dict[str, Any]]  # entries validated one by one: see breaker_shapes


# --- alpha-solver's circuit_breakers.json ---


class AlphaBreaker(OpenModel):
    """Ranges from alpha-solver's json_schema_for_circuit_breakers.json."""

    id: OptText = None
    failure_threshold: SeedCount = None
    success_threshold: SeedCount = None
    timeout_seconds: SeedTimeoutS = None
    half_open_requests: SeedHalfOpenCalls = None
    monitoring_window_seconds: SeedWindowS = None
    error_types: OptStringSet = None
    exclude_errors: OptStringSet = None
    cost_threshold_usd: OptMoney = None
    fallback_action: OptFallback = None
    alert_on_open: OptBool = None


class AlphaGlobal(OpenModel):
    enabled: OptBool = None


class AlphaSpec(Routing):
    model_config = ConfigDict(extra="allow", frozen=True)
    breakers: dict[str, dict[str, Any]]
    global_config: AlphaGlobal = AlphaGlobal()


# --- RESONTINEX's circuit_breakers.yaml ---


class ResTrip(OpenModel):
    metric: Text
    threshold_ms: OptPosNumber = None
    threshold: OptNumber = None
    consecutive_violations: OptPosInt = None
    window_minutes: OptPosInt = None


class ResBreaker(OpenModel):
    enabled: OptBool = None
    failure_threshold: OptNonNegInt = None
    recovery_timeout_seconds: OptPosInt = None
    half_open_max_calls: OptPosInt = None
    success_threshold: OptNonNegInt = None
    consecutive_success_threshold: OptNonNegInt = None
    sliding_window_size: OptPosInt = None
    minimum_throughput: OptPosInt = None
    trip_conditions: list[ResTrip] | None = None


class ResCircuitOpen(OpenModel):
    severity: Severity | None = None


class ResAlerting(OpenModel):
    circuit_open: ResCircuitOpen = ResCircuitOpen()


class ResSpec(Routing):
    model_config = ConfigDict(extra="allow", frozen=True)
    circuit_breakers: dict[str, dict[str, Any]]
    alerting: ResAlerting = ResAlerting()
