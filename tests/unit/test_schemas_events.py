"""Input events: the wire contract producers write to (DESIGN §4)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    INPUT_EVENT_TYPES,
    CostEvent,
    InvocationStatus,
    LatencyEvent,
    LatencyKind,
    PayloadTooLarge,
    ToolInvocation,
    decode,
    encode,
    error_fields_of,
)
from schemas.limits import MAX_ATTRIBUTES, MAX_EVENT_BYTES, MAX_ID_LEN

TYPICAL: dict[str, Any] = {
    "event_id": "0b7c6f0e-5d7a-4c1e-9a57-3f2a1d9e8b41",
    "ts": "2024-05-01T12:00:00.123Z",
    "vendor": "openai",
    "tool": "chat.completions",
    "model": "gpt-4o",
    "status": "success",
    "duration_ms": 812.5,
    "tokens_in": 1200,
    "tokens_out": 350,
    "cost_usd": "0.0123",
    "team": "search",
    "project": "p-42",
    "environment": "prod",
}


def invocation(**changes: Any) -> bytes:
    return orjson.dumps({**TYPICAL, **changes})


def rejected_fields(raw: bytes, model: type[Any] = ToolInvocation) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(raw)
    return error_fields_of(info.value)


def test_typical_invocation_parses() -> None:
    event = ToolInvocation.model_validate_json(invocation())
    assert event.ts == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert event.status is InvocationStatus.SUCCESS
    assert event.cost_usd == Decimal("0.0123")
    assert (event.team, event.user, event.attributes) == ("search", None, {})


def test_defaults_for_a_failed_call() -> None:
    raw = orjson.dumps(
        {
            "event_id": "e",
            "ts": 0,
            "vendor": "v",
            "tool": "t",
            "status": "timeout",
            "duration_ms": 30000,
        }
    )
    event = ToolInvocation.model_validate_json(raw)
    assert (event.tokens_in, event.tokens_out, event.cost_usd) == (0, 0, Decimal(0))
    assert event.error_type is None


@pytest.mark.parametrize(("wire", "expected"), [(500, "500"), ("rate_limit", "rate_limit")])
def test_error_type_accepts_http_codes_as_numbers(wire: Any, expected: str) -> None:
    event = ToolInvocation.model_validate_json(invocation(status="error", error_type=wire))
    assert event.error_type == expected


def test_unknown_fields_land_in_attributes() -> None:
    raw = invocation(region="eu-west-1", retries=2, flags={"a": [1, None]}, attributes={"x": "y"})
    event = ToolInvocation.model_validate_json(raw)
    assert event.attributes == {
        "x": "y",
        "region": "eu-west-1",
        "retries": "2",
        "flags": '{"a":[1,null]}',
    }
    assert event.__pydantic_extra__ == {}
    assert not hasattr(event, "region")
    assert "region" not in event.model_fields_set
    assert b'"region":"eu-west-1"' in encode(event)
    assert decode(ToolInvocation, encode(event)) == event


def test_unknown_fields_from_python_callers_too() -> None:
    event = ToolInvocation.model_validate({**TYPICAL, "gpu": 1})
    assert event.attributes == {"gpu": "1"}


def test_unknown_field_equal_to_attribute_is_fine_but_a_conflict_is_rejected() -> None:
    same = ToolInvocation.model_validate_json(invocation(region="eu", attributes={"region": "eu"}))
    assert same.attributes == {"region": "eu"}
    raw = invocation(region="us", attributes={"region": "eu"})
    assert rejected_fields(raw) == ["attributes.region"]


def test_too_many_attributes_via_unknown_fields() -> None:
    extra = {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}
    assert rejected_fields(invocation(**extra)) == ["attributes"]
    # Explicit attributes plus unknown fields count together.
    half = MAX_ATTRIBUTES // 2 + 1
    explicit = {f"a{i}": "v" for i in range(half)}
    unknown = {f"u{i}": "v" for i in range(half)}
    assert rejected_fields(invocation(attributes=explicit, **unknown)) == ["attributes"]


def test_too_many_attributes_given_explicitly() -> None:
    attributes = {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}
    assert rejected_fields(invocation(attributes=attributes)) == ["attributes"]


def test_unknown_field_value_and_name_caps() -> None:
    assert rejected_fields(invocation(big="v" * 2000)) == ["attributes.big"]
    assert rejected_fields(invocation(nested={"blob": "v" * 2000})) == ["attributes.nested"]
    assert rejected_fields(invocation(**{"k" * 200: 1})) == ["attributes.<key of 200 chars>"]


@pytest.mark.parametrize("field", ["event_id", "vendor", "tool", "model", "user", "team"])
def test_oversized_strings_are_rejected_naming_the_field(field: str) -> None:
    assert rejected_fields(invocation(**{field: "x" * (MAX_ID_LEN + 1)})) == [field]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cost_usd": -1}, "cost_usd"),
        ({"cost_usd": "-0.01"}, "cost_usd"),
        ({"tokens_in": -5}, "tokens_in"),
        ({"duration_ms": -0.1}, "duration_ms"),
        ({"status": "ok"}, "status"),
        ({"status": "SUCCESS"}, "status"),
        ({"tokens_out": "abc"}, "tokens_out"),
        ({"tokens_out": 1.5}, "tokens_out"),
        ({"duration_ms": "fast"}, "duration_ms"),
        ({"vendor": 5}, "vendor"),
        ({"vendor": ""}, "vendor"),
        ({"team": ["a"]}, "team"),
        ({"error_type": True}, "error_type"),
        ({"attributes": {"a": 1}}, "attributes.a"),
        ({"attributes": ["a"]}, "attributes"),
        ({"ts": "2024-05-01T12:00:00"}, "ts"),
        ({"event_id": None}, "event_id"),
    ],
)
def test_wrong_values_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    assert rejected_fields(invocation(**changes)) == [field]


@pytest.mark.parametrize("field", ["event_id", "ts", "vendor", "tool", "status", "duration_ms"])
def test_required_fields(field: str) -> None:
    raw = orjson.dumps({k: v for k, v in TYPICAL.items() if k != field})
    assert rejected_fields(raw) == [field]


def test_cost_event() -> None:
    raw = orjson.dumps(
        {
            "event_id": "c1",
            "ts": 1714564800000,
            "team": "search",
            "cost_usd": 12.34,
            "tokens": 1000,
            "source": "billing-export",
            "invoice": "INV-7",
        }
    )
    event = CostEvent.model_validate_json(raw)
    assert event.cost_usd == Decimal("12.34")
    assert event.attributes == {"invoice": "INV-7"}
    assert rejected_fields(raw.replace(b"12.34", b"-12.34"), CostEvent) == ["cost_usd"]
    assert rejected_fields(raw.replace(b'"source":"billing-export",', b""), CostEvent) == ["source"]


def test_latency_event() -> None:
    raw = b'{"event_id":"l1","ts":1,"vendor":"v","tool":"t","latency_ms":12,"kind":"ttfb"}'
    event = LatencyEvent.model_validate_json(raw)
    assert (event.latency_ms, event.kind) == (12.0, LatencyKind.TTFB)
    assert rejected_fields(raw.replace(b"ttfb", b"p99"), LatencyEvent) == ["kind"]
    assert rejected_fields(raw.replace(b"12", b"-1"), LatencyEvent) == ["latency_ms"]
    # Scope attributes are not part of a latency event: they are kept as attributes.
    assert LatencyEvent.model_validate_json(raw[:-1] + b',"team":"a"}').attributes == {"team": "a"}


def test_input_event_types() -> None:
    assert dict(INPUT_EVENT_TYPES) == {
        "tool-invocations": ToolInvocation,
        "cost-events": CostEvent,
        "latency-events": LatencyEvent,
    }
    with pytest.raises(TypeError):
        INPUT_EVENT_TYPES["x"] = ToolInvocation  # type: ignore[index]


def test_events_are_frozen() -> None:
    event = ToolInvocation.model_validate_json(invocation())
    with pytest.raises(ValidationError):
        event.vendor = "other"  # type: ignore[misc]


def test_decode_enforces_the_event_size_cap() -> None:
    raw = invocation()
    padded = raw + b" " * (MAX_EVENT_BYTES - len(raw))  # trailing whitespace is valid JSON
    assert decode(ToolInvocation, padded) == decode(ToolInvocation, raw)
    with pytest.raises(PayloadTooLarge) as info:
        decode(ToolInvocation, padded + b" ")
    assert (info.value.size, info.value.limit) == (MAX_EVENT_BYTES + 1, MAX_EVENT_BYTES)
