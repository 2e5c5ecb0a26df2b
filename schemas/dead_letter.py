"""Dead letters (topic `dead-letter`, keyed by the original key) — DESIGN §4.

Bad input never crashes a worker and is never dropped silently: it is wrapped here with its
source coordinates and a one-line reason. Reasons end up in logs and dashboards, so they name
fields and problems but never echo more than a short, capped preview of producer data.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails

from schemas.base import WireModel
from schemas.limits import (
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_DEAD_LETTER_ORIGINAL_BYTES,
    MAX_ERROR_VALUE_PREVIEW,
    MAX_ERRORS_IN_REASON,
    MAX_LIST_ITEMS,
    MAX_TEXT_LEN,
)
from schemas.types import EventTime, Identifier, ShortStr, Text


def _base64_schema(max_bytes: int) -> WithJsonSchema:
    # bytes travel as URL-safe base64 with padding (WIRE_CONFIG; the standard alphabet and
    # missing padding are accepted on input). pydantic would put the *byte* cap into the schema
    # as maxLength, which is wrong for the encoded string, so the schema states the encoded size.
    encoded_max = 4 * ((max_bytes + 2) // 3)
    return WithJsonSchema(
        {"type": "string", "contentEncoding": "base64url", "maxLength": encoded_max}
    )


OriginalBytes = Annotated[
    bytes,
    Field(max_length=MAX_DEAD_LETTER_ORIGINAL_BYTES),
    _base64_schema(MAX_DEAD_LETTER_ORIGINAL_BYTES),
]
OriginalKeyBytes = Annotated[
    bytes, Field(max_length=MAX_DEAD_LETTER_KEY_BYTES), _base64_schema(MAX_DEAD_LETTER_KEY_BYTES)
]


class DeadLetterKind(StrEnum):
    UNDECODABLE = "undecodable"
    """Not a UTF-8 JSON object at all."""
    SCHEMA = "schema"
    """Valid JSON that violates the model (types, caps, negative cost...)."""
    TOO_LARGE = "too_large"
    """Over the size cap; not parsed."""
    PROCESSING = "processing"
    """Valid, but a kernel raised on it; kept so it can be replayed after a fix."""
    DELIVERY = "delivery"
    """An alert a receiver refused or could not take in time (`guardstream alerts forward`);
    `topic` is the alerts topic, so republishing the original forwards it again."""


class DeadLetter(WireModel):
    """An input record guardstream could not process, with where it came from and why."""

    original: OriginalBytes
    """The record value as received (base64 in JSON), cut to the cap if larger."""
    original_size: int = Field(ge=0)
    """Size of the full original value in bytes."""
    original_truncated: bool = False
    original_key: OriginalKeyBytes | None = None
    """The record key as received (base64 in JSON), cut to the cap if larger."""
    topic: Identifier
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    record_ts: EventTime | None = None
    """The Kafka record timestamp; deterministic under replay, unlike the wall clock."""
    received_at: EventTime | None = None
    """Wall-clock time the worker saw it (informational only)."""
    expected_type: ShortStr | None = None
    """The model the value should have decoded to, e.g. ToolInvocation."""
    error_kind: DeadLetterKind
    error: Text
    """One line naming the field(s) and the problem."""
    error_fields: list[ShortStr] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    """Dotted paths of the offending fields, for metrics and grouping."""

    @classmethod
    def build(
        cls,
        *,
        original: bytes,
        original_key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        error_kind: DeadLetterKind,
        error: str,
        error_fields: Sequence[str] = (),
        record_ts: datetime | int | None = None,
        received_at: datetime | int | None = None,
        expected_type: str | None = None,
    ) -> Self:
        """Wrap a bad record, cutting value, key and reason to their caps."""
        return cls(
            original=original[:MAX_DEAD_LETTER_ORIGINAL_BYTES],
            original_size=len(original),
            original_truncated=len(original) > MAX_DEAD_LETTER_ORIGINAL_BYTES,
            original_key=None if original_key is None else original_key[:MAX_DEAD_LETTER_KEY_BYTES],
            topic=topic,
            partition=partition,
            offset=offset,
            record_ts=record_ts,
            received_at=received_at,
            expected_type=expected_type,
            error_kind=error_kind,
            error=error[:MAX_TEXT_LEN],
            error_fields=list(error_fields)[:MAX_LIST_ITEMS],
        )

    @classmethod
    def from_validation_error(
        cls,
        exc: ValidationError,
        *,
        original: bytes,
        original_key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        record_ts: datetime | int | None = None,
        received_at: datetime | int | None = None,
    ) -> Self:
        """Dead letter for a record that failed `model_validate_json`: kind, reason, fields and
        expected type come from `exc`."""
        return cls.build(
            original=original,
            original_key=original_key,
            topic=topic,
            partition=partition,
            offset=offset,
            record_ts=record_ts,
            received_at=received_at,
            error_kind=error_kind_for(exc),
            error=describe_validation_error(exc),
            error_fields=error_fields_of(exc),
            expected_type=exc.title,
        )


# --- turning a ValidationError into a safe one-line reason --------------------------------------

_VALUE_ERROR_PREFIX = "Value error, "


def _preview_key(part: str) -> str:
    # Path segments can be producer-chosen dict keys (attributes), so they are capped too.
    if len(part) <= MAX_ERROR_VALUE_PREVIEW:
        return part
    return f"<key of {len(part)} chars>"


def format_loc(loc: tuple[int | str, ...]) -> str:
    """("attributes", "region") -> "attributes.region"; ("evidence", 3) -> "evidence[3]"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for an invalid dict *key*
            out += part
        else:
            out += ("." if out else "") + _preview_key(part)
    return out


def preview_value(value: Any) -> str:
    """A short description of an offending input: the value itself only when it is short."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float | Decimal):
        try:
            text = str(value)
        except ValueError:  # an int past Python's int-to-str digit limit (4300 by default)
            return f"a number of more than {sys.get_int_max_str_digits()} digits"
        if len(text) <= MAX_ERROR_VALUE_PREVIEW:
            return text
        return f"a number of {len(text)} characters"
    if isinstance(value, str):
        if len(value) <= MAX_ERROR_VALUE_PREVIEW:
            return repr(value)
        return f"a string of {len(value)} characters"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} items"
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    return f"a {type(value).__name__}"


def _describe_one(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix(_VALUE_ERROR_PREFIX)
    path = format_loc(error["loc"])
    if not path:  # whole-document errors (invalid JSON, not an object, cross-field checks)
        return message
    if error["type"] == "missing":
        return f"{path}: {message}"
    return f"{path}: {message} (got {preview_value(error['input'])})"


def describe_validation_error(
    exc: ValidationError, *, max_errors: int = MAX_ERRORS_IN_REASON
) -> str:
    """One line naming each offending field and its problem, e.g.
    ``cost_usd: Input should be greater than or equal to 0 (got -1)``.

    At most `max_errors` errors are spelled out ("(+N more)" after that); offending values are
    shown only when shorter than MAX_ERROR_VALUE_PREVIEW characters, otherwise by type and size,
    because inputs can carry PII. The result never exceeds MAX_TEXT_LEN characters.
    """
    errors = exc.errors(include_url=False, include_context=False)
    parts = [_describe_one(error) for error in errors[:max_errors]]
    if len(errors) > max_errors:
        parts.append(f"(+{len(errors) - max_errors} more)")
    return "; ".join(parts)[:MAX_TEXT_LEN]


def error_fields_of(exc: ValidationError) -> list[str]:
    """Distinct dotted paths of the offending fields, in error order ("" for the document)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    paths = [format_loc(error["loc"]) for error in errors]
    return list(dict.fromkeys(paths))[:MAX_LIST_ITEMS]


# Whole-document errors that mean "these bytes are not a JSON object" rather than "a field is
# wrong": not JSON / not UTF-8 (json_invalid), or JSON of another type at the root.
_UNDECODABLE_ROOT_ERRORS = frozenset({"json_invalid", "json_type", "model_type"})


def error_kind_for(exc: ValidationError) -> DeadLetterKind:
    """UNDECODABLE when the bytes are not a JSON object (or not UTF-8), else SCHEMA."""
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        if error["type"] == "json_invalid" or (
            not error["loc"] and error["type"] in _UNDECODABLE_ROOT_ERRORS
        ):
            return DeadLetterKind.UNDECODABLE
    return DeadLetterKind.SCHEMA
