"""Property tests: invariants of the wire format over generated inputs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas import (
    INPUT_EVENT_TYPES,
    WIRE_CONFIG,
    MoneyUSD,
    ToolInvocation,
    alert_fingerprint,
    canonical_bytes,
    decode,
    describe_validation_error,
    encode,
    policy_version,
)
from schemas.limits import (
    MAX_ATTRIBUTE_KEY_LEN,
    MAX_ATTRIBUTE_VALUE_LEN,
    MAX_ATTRIBUTES,
    MAX_DURATION_MS,
    MAX_ERROR_VALUE_PREVIEW,
    MAX_ID_LEN,
    MAX_MONEY_USD,
    MAX_TEXT_LEN,
    MAX_TOKENS,
)

ids = st.text(min_size=1, max_size=MAX_ID_LEN)
optional_names = st.none() | st.text(max_size=MAX_ID_LEN)
offsets = st.builds(
    timezone, st.integers(-23 * 60, 23 * 60).map(lambda minutes: timedelta(minutes=minutes))
)
# Within the input event-time range (schemas.limits), a day inside for the offsets.
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(8999, 12, 30), timezones=offsets
)
money = st.decimals(min_value=0, max_value=MAX_MONEY_USD, allow_nan=False, allow_infinity=False)
attributes = st.dictionaries(
    st.text(min_size=1, max_size=MAX_ATTRIBUTE_KEY_LEN),
    st.text(max_size=MAX_ATTRIBUTE_VALUE_LEN),
    max_size=MAX_ATTRIBUTES,
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

MONEY_LIST = TypeAdapter(list[MoneyUSD], config=WIRE_CONFIG)

# Long enough to be withheld from reasons, distinctive enough to be found if it leaked.
long_text = st.text(min_size=MAX_ERROR_VALUE_PREVIEW + 1, max_size=300).map(lambda t: "§" + t)

invocations = st.builds(
    ToolInvocation,
    event_id=ids,
    ts=instants,
    vendor=ids,
    tool=ids,
    model=optional_names,
    status=st.sampled_from(["success", "error", "timeout", "rejected"]),
    error_type=optional_names,
    duration_ms=st.floats(min_value=0, max_value=MAX_DURATION_MS),
    tokens_in=st.integers(0, MAX_TOKENS),
    tokens_out=st.integers(0, MAX_TOKENS),
    cost_usd=money,
    user=optional_names,
    team=optional_names,
    session_id=optional_names,
    data_classification=optional_names,
    attributes=attributes,
)


def shuffled(mapping: dict[str, Any], seed: int) -> dict[str, Any]:
    items = list(mapping.items())
    random.Random(seed).shuffle(items)
    return {
        key: shuffled(value, seed) if isinstance(value, dict) else value for key, value in items
    }


@given(invocations)
@settings(max_examples=200)
def test_any_valid_tool_invocation_round_trips(event: ToolInvocation) -> None:
    wire = encode(event)
    again = decode(ToolInvocation, wire)
    assert again == event
    assert again.ts.utcoffset() == timedelta(0)
    assert encode(again) == wire


@given(
    invocations, st.dictionaries(st.from_regex(r"\Ax_[a-z0-9_]{1,20}\Z"), json_values, max_size=5)
)
def test_unknown_fields_always_land_in_attributes(
    event: ToolInvocation, extra: dict[str, Any]
) -> None:
    wire = orjson.loads(encode(event))
    wire["attributes"] = {}
    wire.update(extra)
    again = decode(ToolInvocation, orjson.dumps(wire))
    assert again.__pydantic_extra__ == {}
    assert set(again.attributes) == set(extra)
    for key, value in extra.items():
        kept = again.attributes[key]
        assert kept == value if isinstance(value, str) else orjson.loads(kept) == value


# Decimals of up to 15 significant digits: what a JSON *number* carries exactly (DBL_DIG).
money_15_digits = st.builds(
    lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
    st.integers(0, 10**15 - 1),
    st.integers(-30, -6),
)


@given(st.lists(money_15_digits, min_size=1, max_size=50))
def test_money_numbers_sum_exactly_through_the_wire(amounts: list[Decimal]) -> None:
    # Amounts written as JSON *numbers*, decoded, re-encoded (strings) and decoded again.
    raw = b"[" + b",".join(format(amount, "f").encode() for amount in amounts) + b"]"
    decoded = MONEY_LIST.validate_json(raw)
    again = MONEY_LIST.validate_json(MONEY_LIST.dump_json(decoded))
    assert sum(again, Decimal(0)) == sum(decoded, Decimal(0)) == sum(amounts, Decimal(0))


@given(st.lists(money, min_size=1, max_size=50))
def test_money_strings_are_exact_at_any_precision(amounts: list[Decimal]) -> None:
    raw = orjson.dumps([format(amount, "f") for amount in amounts])
    assert MONEY_LIST.validate_json(raw) == amounts


@given(
    st.text(max_size=30), st.dictionaries(st.text(max_size=30), st.text(max_size=30)), st.integers()
)
def test_fingerprint_is_stable_under_label_order(
    kind: str, labels: dict[str, str], seed: int
) -> None:
    fingerprint = alert_fingerprint(kind, labels)
    assert alert_fingerprint(kind, shuffled(labels, seed)) == fingerprint
    assert len(fingerprint) == 32


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8), st.integers())
def test_canonical_bytes_is_independent_of_key_order(fields: dict[str, Any], seed: int) -> None:
    assert canonical_bytes(shuffled(fields, seed)) == canonical_bytes(fields)
    assert canonical_bytes({**fields, "hash": "x"}) == canonical_bytes(fields)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8), st.integers())
def test_policy_version_is_independent_of_key_order(spec: dict[str, Any], seed: int) -> None:
    assert policy_version(shuffled(spec, seed)) == policy_version(spec)


# Every field of every input model, plus an unknown one: hostile producers pick any of them.
_INPUT_FIELDS = sorted({f for m in INPUT_EVENT_TYPES.values() for f in m.model_fields} | {"zz"})
_MINIMAL = {"event_id": "e", "ts": 0, "vendor": "v", "tool": "t", "status": "success"}


@given(
    st.sampled_from(sorted(INPUT_EVENT_TYPES)),
    st.dictionaries(st.sampled_from(_INPUT_FIELDS), json_values | long_text, max_size=6),
)
@settings(max_examples=300)
def test_bad_input_only_ever_raises_validation_error(topic: str, changes: dict[str, Any]) -> None:
    # "Bad input never crashes a worker" (DESIGN §4): whatever JSON arrives, decoding either
    # succeeds or raises ValidationError, and the reason stays bounded and PII-safe. (This is
    # the test that caught pydantic-core passing JSON arrays to Decimal((sign, digits, exp)).)
    raw = orjson.dumps({**_MINIMAL, **changes})
    try:
        INPUT_EVENT_TYPES[topic].model_validate_json(raw)
    except ValidationError as exc:
        text = describe_validation_error(exc)
        assert len(text) <= MAX_TEXT_LEN
        for value in changes.values():
            if isinstance(value, str) and len(value) > MAX_ERROR_VALUE_PREVIEW:
                assert value not in text
