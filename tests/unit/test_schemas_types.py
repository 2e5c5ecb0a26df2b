"""Field types: event time parsing, exact money, caps. Tables first, one row per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import (
    WIRE_CONFIG,
    Attributes,
    Duration,
    EventTime,
    Identifier,
    MoneyUSD,
    ShortStr,
    SignedMoneyUSD,
    TokenCount,
)
from schemas.limits import (
    MAX_ATTRIBUTE_KEY_LEN,
    MAX_ATTRIBUTE_VALUE_LEN,
    MAX_ATTRIBUTES,
    MAX_ID_LEN,
    MAX_MONEY_USD,
    MAX_TOKENS,
)

EVENT_TIME = TypeAdapter(EventTime, config=WIRE_CONFIG)
MONEY = TypeAdapter(MoneyUSD, config=WIRE_CONFIG)

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOON_MS = 1_714_564_800_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'"2024-05-01T12:00:00Z"', NOON, id="rfc3339-Z"),
        pytest.param(b'"2024-05-01T12:00:00+00:00"', NOON, id="rfc3339-+00:00"),
        pytest.param(b'"2024-05-01T14:00:00+02:00"', NOON, id="offset-converted-to-utc"),
        pytest.param(b'"2024-05-01T06:30:00-05:30"', NOON, id="negative-offset"),
        pytest.param(
            b'"2024-05-01T12:00:00.123456Z"', NOON.replace(microsecond=123456), id="micros"
        ),
        pytest.param(str(NOON_MS).encode(), NOON, id="epoch-ms-int"),
        # Small values are still milliseconds; pydantic's default would read them as seconds.
        pytest.param(b"1000", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), id="epoch-ms-small"),
        pytest.param(b"1700000000", datetime(1970, 1, 20, 16, 13, 20, tzinfo=UTC), id="not-s"),
        pytest.param(b"1714564800000.5", NOON.replace(microsecond=500), id="epoch-ms-float-sub-ms"),
        pytest.param(b"0", datetime(1970, 1, 1, tzinfo=UTC), id="epoch-zero"),
    ],
)
def test_event_time_accepts_and_normalises_to_utc(raw: bytes, expected: datetime) -> None:
    parsed = EVENT_TIME.validate_json(raw)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'"2024-05-01T12:00:00"', id="naive"),
        pytest.param(b'"2024-05-01"', id="date-only"),
        pytest.param(b'"garbage"', id="garbage"),
        pytest.param(b'""', id="empty"),
        pytest.param(b'"2024-13-01T00:00:00Z"', id="month-13"),
        pytest.param(b"true", id="bool"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"1e20", id="beyond-year-9999"),
    ],
)
def test_event_time_rejects(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        EVENT_TIME.validate_json(raw)


def test_event_time_rejects_naive_python_datetime() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        EVENT_TIME.validate_python(datetime(2024, 5, 1, 12))


def test_event_time_serialises_as_rfc3339_z() -> None:
    offset = EVENT_TIME.validate_json(b'"2024-05-01T14:00:00+02:00"')
    assert EVENT_TIME.dump_json(offset) == b'"2024-05-01T12:00:00Z"'
    assert EVENT_TIME.dump_json(EVENT_TIME.validate_json(b"0")) == b'"1970-01-01T00:00:00Z"'


# --- money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"0.0001", Decimal("0.0001")),
        (b'"0.0001"', Decimal("0.0001")),
        (b"1e-4", Decimal("0.0001")),
        (b"0.1", Decimal("0.1")),
        (b"0.30000000000000004", Decimal("0.30000000000000004")),
        (b"12", Decimal(12)),
        (b'"1E+5"', Decimal(100000)),
        (b"1000000000", MAX_MONEY_USD),
    ],
)
def test_money_is_exact_from_json_numbers_and_strings(raw: bytes, expected: Decimal) -> None:
    value = MONEY.validate_json(raw)
    assert value == expected
    assert isinstance(value, Decimal)


def test_money_number_is_not_a_binary_float_expansion() -> None:
    # Decimal(0.0001) is 0.000100000000000000004792...; the wire value must not be that.
    assert MONEY.validate_json(b"0.0001") != Decimal(0.0001)  # noqa: RUF032 (the point)
    assert str(MONEY.validate_json(b"0.0001")) == "0.0001"


def test_money_numbers_beyond_double_precision_need_strings() -> None:
    # Documented limit (schemas.types.MoneyUSD): pydantic-core reads JSON numbers as doubles.
    # 18 significant digits do not fit; the string form is exact at any precision.
    assert MONEY.validate_json(b'"123456789.123456789"') == Decimal("123456789.123456789")
    assert MONEY.validate_json(b"123456789.123456789") == Decimal("123456789.12345679")


def test_a_million_charges_sum_exactly() -> None:
    raw = b"[" + b",".join([b"0.0001"] * 1_000_000) + b"]"
    charges = TypeAdapter(list[MoneyUSD], config=WIRE_CONFIG).validate_json(raw)
    assert sum(charges, Decimal(0)) == Decimal(100)
    # The property the test guards: floats would not get there.
    assert sum(orjson.loads(raw)) != 100


@pytest.mark.parametrize(
    "raw",
    [
        b"-1",
        b'"-0.01"',
        b"1000000000.01",
        b'"NaN"',
        b'"Infinity"',
        b"true",
        b'"abc"',
        b"null",
        # pydantic-core's lax mode would build Decimal((sign, digits, exponent)) from these:
        b"[0,[1,2],-2]",
        b"[null,null,null]",  # ... and this one raised a bare ValueError
        b"{}",
    ],
)
def test_money_rejects(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        MONEY.validate_json(raw)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("0.0001"), b'"0.0001"'),
        (Decimal("1E+5"), b'"100000"'),
        (Decimal("1E-7"), b'"0.0000001"'),
        (Decimal("-0.0"), b'"0.0"'),
        (Decimal("12.50"), b'"12.50"'),
    ],
)
def test_money_serialises_as_fixed_point_string(value: Decimal, wire: bytes) -> None:
    assert MONEY.dump_json(value) == wire
    assert MONEY.validate_json(wire) == value
    assert MONEY.dump_python(value) == value  # Python mode keeps the Decimal


def test_signed_money_allows_overspend() -> None:
    signed = TypeAdapter(SignedMoneyUSD, config=WIRE_CONFIG)
    assert signed.validate_json(b'"-12.5"') == Decimal("-12.5")


# --- counts and strings -----------------------------------------------------------------------


def _validate(tp: Any, value: Any) -> Any:
    return TypeAdapter(tp, config=WIRE_CONFIG).validate_python(value)


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        (TokenCount, -1),
        (TokenCount, MAX_TOKENS + 1),
        (TokenCount, 1.5),
        (Identifier, ""),
        (Identifier, "x" * (MAX_ID_LEN + 1)),
        (ShortStr, "x" * (MAX_ID_LEN + 1)),
        (ShortStr, 5),
        (Attributes, {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}),
        (Attributes, {"k" * (MAX_ATTRIBUTE_KEY_LEN + 1): "v"}),
        (Attributes, {"k": "v" * (MAX_ATTRIBUTE_VALUE_LEN + 1)}),
        (Attributes, {"": "v"}),
        (Attributes, {"k": 1}),
        (Duration, 3600),  # a bare number would be seconds: ambiguous next to epoch ms
        (Duration, timedelta(0)),
    ],
)
def test_caps_and_types_reject(tp: Any, value: Any) -> None:
    with pytest.raises(ValidationError):
        _validate(tp, value)


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        (TokenCount, 0),
        (TokenCount, MAX_TOKENS),
        (Identifier, "x" * MAX_ID_LEN),
        (ShortStr, ""),
        (Attributes, {f"k{i}": "v" * MAX_ATTRIBUTE_VALUE_LEN for i in range(MAX_ATTRIBUTES)}),
    ],
)
def test_caps_accept_the_boundary(tp: Any, value: Any) -> None:
    assert _validate(tp, value) == value


def test_duration_accepts_iso8601() -> None:
    duration = TypeAdapter(Duration, config=WIRE_CONFIG)
    assert duration.validate_json(b'"P30D"') == timedelta(days=30)
    assert duration.dump_json(timedelta(hours=1)) == b'"PT1H"'
