"""What a breaker consumes: classified calls, clock events and operator commands."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from schemas.events import InvocationStatus, ToolInvocation
from schemas.types import epoch_ms
from workers.kernels.breaker_config import RATE_LIMIT, BreakerConfig
from workers.kernels.windows import Outcome


class Verdict(StrEnum):
    """How a call counts for a breaker."""

    IGNORED = "ignored"
    SUCCESS = "success"
    FAILURE = "failure"


class Override(StrEnum):
    """Operator commands; each names the state it leads to."""

    FORCE_OPEN = "forced_open"
    DISABLE = "disabled"
    METRICS_ONLY = "metrics_only"
    RESET = "closed"


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
    ts_ms = epoch_ms(invocation.ts)
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
