"""Dead letters and the one-line reasons that go into them, logs and dashboards."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    DeadLetter,
    DeadLetterKind,
    ToolInvocation,
    decode,
    describe_validation_error,
    encode,
    error_kind_for,
)
from schemas.dead_letter import format_loc, preview_value
from schemas.limits import (
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_DEAD_LETTER_ORIGINAL_BYTES,
    MAX_TEXT_LEN,
)

VALID: dict[str, Any] = {
    "event_id": "e1",
    "ts": "2024-05-01T12:00:00Z",
    "vendor": "openai",
    "tool": "chat",
    "status": "success",
    "duration_ms": 5,
}
SECRET = "ssn 123-45-6789 mail alice@example.com"  # 38 chars: longer than the preview cap


def failure(raw: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        ToolInvocation.model_validate_json(raw)
    return info.value


def reason(**changes: Any) -> str:
    return describe_validation_error(failure(orjson.dumps({**VALID, **changes})))


def test_reason_names_field_problem_and_short_value() -> None:
    assert reason(cost_usd=-1) == "cost_usd: Input should be greater than or equal to 0 (got -1)"
    assert reason(status="ok") == (
        "status: Input should be 'success', 'error', 'timeout' or 'rejected' (got 'ok')"
    )


def test_reason_for_missing_fields_has_no_value() -> None:
    raw = orjson.dumps({k: v for k, v in VALID.items() if k != "vendor"})
    assert describe_validation_error(failure(raw)) == "vendor: Field required"


def test_reason_never_echoes_long_values() -> None:
    text = reason(user=SECRET * 10, model=SECRET)
    assert (
        text == "user: String should have at most 256 characters (got a string of 380 characters)"
    )
    # Producer-chosen keys are capped like values (explicit attributes and unknown fields).
    text = reason(attributes={SECRET * 4: "x"})
    assert text.startswith("attributes.<key of 152 chars>[key]: ")
    assert "6789" not in text
    assert "alice" not in text
    text = reason(**{SECRET * 4: 1})
    assert text.startswith("attributes.<key of 152 chars>: ")
    text = reason(region=SECRET * 40)
    assert "(got a string of 1520 characters)" in text
    assert "6789" not in text


def test_reason_describes_non_string_values_by_shape() -> None:
    assert preview_value({"a": 1}) == "an object with 1 keys"
    assert preview_value([1, 2]) == "an array of 2 items"
    assert preview_value(None) == "null"
    assert preview_value(True) == "true"
    assert preview_value(10**40) == "a number of 41 characters"
    assert preview_value(b"\x00" * 3) == "3 bytes"


def test_reason_is_capped_in_errors_and_length() -> None:
    text = reason(vendor="", tool="", status="?", duration_ms=-1, tokens_in=-1)
    assert text.count(";") == 3
    assert text.endswith("(+2 more)")
    assert len(describe_validation_error(failure(b"{}"), max_errors=1000)) <= MAX_TEXT_LEN


def test_format_loc() -> None:
    assert format_loc(("attributes", "region")) == "attributes.region"
    assert format_loc(("evidence", 3)) == "evidence[3]"
    assert format_loc(("attributes", "k", "[key]")) == "attributes.k[key]"
    assert format_loc(()) == ""


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b'{"a":', DeadLetterKind.UNDECODABLE),
        (b"\xff\xfe{}", DeadLetterKind.UNDECODABLE),
        (b'{"vendor":"\xff"}', DeadLetterKind.UNDECODABLE),  # invalid UTF-8 inside a string
        (b"[1,2]", DeadLetterKind.UNDECODABLE),
        (b'"just a string"', DeadLetterKind.UNDECODABLE),
        (b"{}", DeadLetterKind.SCHEMA),
        (orjson.dumps({**VALID, "cost_usd": -1}), DeadLetterKind.SCHEMA),
    ],
)
def test_error_kind(raw: bytes, kind: DeadLetterKind) -> None:
    assert error_kind_for(failure(raw)) is kind


def test_invalid_json_reason_does_not_echo_the_document() -> None:
    text = describe_validation_error(failure(b'{"user": "' + SECRET.encode() + b'" oops'))
    assert text.startswith("Invalid JSON")
    assert "6789" not in text


def test_validation_error_str_hides_inputs() -> None:
    # Someone will log str(exc); it must not carry producer data (DESIGN §10).
    assert "6789" not in str(failure(orjson.dumps({**VALID, "user": SECRET * 10})))


def test_dead_letter_from_validation_error() -> None:
    raw = orjson.dumps({**VALID, "cost_usd": -1})
    letter = DeadLetter.from_validation_error(
        failure(raw),
        original=raw,
        original_key=b"k",
        topic="tool-invocations",
        partition=2,
        offset=99,
        record_ts=1714564800000,
    )
    assert letter.error_kind is DeadLetterKind.SCHEMA
    assert letter.error_fields == ["cost_usd"]
    assert letter.expected_type == "ToolInvocation"
    assert (letter.original, letter.original_size, letter.original_truncated) == (
        raw,
        len(raw),
        False,
    )
    assert decode(DeadLetter, encode(letter)) == letter


def test_dead_letter_bytes_are_base64_and_capped() -> None:
    huge = b"\xff" * (MAX_DEAD_LETTER_ORIGINAL_BYTES + 10)
    letter = DeadLetter.build(
        original=huge,
        original_key=b"\x00" * (MAX_DEAD_LETTER_KEY_BYTES + 1),
        topic="t",
        partition=0,
        offset=0,
        error_kind=DeadLetterKind.TOO_LARGE,
        error="x" * 10_000,
    )
    assert len(letter.original) == MAX_DEAD_LETTER_ORIGINAL_BYTES
    assert letter.original_truncated
    assert letter.original_size == len(huge)
    assert len(letter.original_key or b"") == MAX_DEAD_LETTER_KEY_BYTES
    assert len(letter.error) == MAX_TEXT_LEN
    wire = orjson.loads(encode(letter))
    assert base64.urlsafe_b64decode(wire["original"]) == letter.original
    assert decode(DeadLetter, encode(letter)) == letter


def test_dead_letter_accepts_standard_base64_too() -> None:
    letter = DeadLetter.build(
        original=b"\xfb\xff",
        original_key=None,
        topic="t",
        partition=0,
        offset=0,
        error_kind=DeadLetterKind.UNDECODABLE,
        error="bad",
    )
    wire = orjson.loads(encode(letter))
    wire["original"] = base64.b64encode(b"\xfb\xff").decode()  # "+/8=" instead of "-_8="
    assert decode(DeadLetter, orjson.dumps(wire)).original == b"\xfb\xff"


def test_dead_letter_rejects_an_oversized_original_built_by_hand() -> None:
    with pytest.raises(ValidationError):
        DeadLetter(
            original=b"x" * (MAX_DEAD_LETTER_ORIGINAL_BYTES + 1),
            original_size=1,
            topic="t",
            partition=0,
            offset=0,
            error_kind="schema",
            error="x",
        )
