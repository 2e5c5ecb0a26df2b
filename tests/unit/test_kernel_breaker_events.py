"""What the breaker kernel consumes: `classify` (its inlined epoch conversion included),
`observe_latency`, and `Call` as a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import LatencyEvent, LatencyKind, ToolInvocation
from schemas.types import epoch_ms
from workers.kernels.breaker import (
    BreakerConfig,
    Call,
    Latency,
    Verdict,
    classify,
    observe_latency,
)
from workers.kernels.breaker_windows import Outcome

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def invocation(ts: datetime, status: str = "success", duration_ms: float = 10) -> ToolInvocation:
    return ToolInvocation(
        event_id="e1",
        ts=ts,
        vendor="openai",
        tool="chat",
        status=status,
        duration_ms=duration_ms,
        cost_usd=Decimal("0.25"),
    )


@given(
    offset_us=st.integers(0, 10**16),
    zone_min=st.sampled_from([0, 90, -300]),
)
def test_classify_time_is_epoch_ms_exactly(offset_us: int, zone_min: int) -> None:
    # classify inlines schemas.types.epoch_ms for speed: it must agree to the millisecond, in
    # any zone, over the whole event-time range (1970 on: earlier times are refused at ingest).
    zone = timezone(timedelta(minutes=zone_min))
    ts = (_EPOCH + timedelta(microseconds=offset_us)).astimezone(zone)
    assert classify(invocation(ts), BreakerConfig()).ts_ms == epoch_ms(ts)


def test_classified_call_carries_the_outcome() -> None:
    ts = _EPOCH + timedelta(milliseconds=1_767_225_600_123)
    call = classify(invocation(ts, "error", duration_ms=61_000), BreakerConfig())
    assert (call.ts_ms, call.verdict, call.retry_at_ms) == (
        1_767_225_600_123,
        Verdict.FAILURE,
        None,
    )
    assert call.outcome == Outcome(
        failed=True, slow=True, duration_ms=61_000, cost_usd=Decimal("0.25")
    )
    built = Call(call.ts_ms, call.verdict, call.outcome)
    assert built == call
    assert hash(built) == hash(call)
    assert "verdict=<Verdict.FAILURE" in repr(call)
    assert call != Call(call.ts_ms, Verdict.SUCCESS, call.outcome)


def latency_event(kind: str, latency_ms: float = 250.0) -> LatencyEvent:
    return LatencyEvent(
        event_id="l1",
        ts=_EPOCH + timedelta(milliseconds=1_767_225_600_000),
        vendor="openai",
        tool="chat",
        latency_ms=latency_ms,
        kind=kind,
    )


def test_observe_latency_keeps_total_latencies() -> None:
    assert observe_latency(latency_event("total")) == Latency(1_767_225_600_000, 250.0)


@pytest.mark.parametrize("kind", [k for k in LatencyKind if k is not LatencyKind.TOTAL])
def test_observe_latency_drops_other_kinds(kind: LatencyKind) -> None:
    assert observe_latency(latency_event(kind)) is None
