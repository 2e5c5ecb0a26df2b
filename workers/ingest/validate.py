"""Raw record bytes -> a validated input event, or the dead letter saying why not. Pure.

Every value ends as exactly one of the two and no bytes make it raise (DESIGN §4, §10).
`check_value` is the whole verdict on one value (`check_as` once its model is known), shared
by the ingest stage (`validate_records`) and `replay --input` (`input_lines.decode_event`),
so replay refuses what the worker dead-letters, with the same reason. A value is accepted when
1. it is there (not a tombstone) and at most MAX_EVENT_BYTES long (else refused unparsed);
2. the model, or the control record it announces (`schemas.stream`), validates its bytes in
   pydantic-core: the hot path; JSON nested deeper than MAX_JSON_DEPTH does not get through;
3. orjson reads it too and no object repeats a key (`schemas.json_text`): NaN, Infinity,
   numbers beyond a double and duplicate keys are refused here.
A value the model refuses is checked against 3 as well, so a NaN is reported as such whichever
field holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

import orjson
from pydantic import ValidationError

from schemas.dead_letter import (
    DeadLetter,
    DeadLetterKind,
    describe_validation_error,
    error_fields_of,
    error_kind_for,
    format_loc,
)
from schemas.events import InputEvent
from schemas.json_text import duplicate_key, duplicate_key_given, not_standard_reason
from schemas.limits import MAX_EVENT_BYTES, MAX_JSON_DEPTH
from schemas.stream import StreamEvent, control_type
from schemas.types import EPOCH_MS_MAX, EPOCH_MS_MIN
from workers.batching.records import RawRecord
from workers.batching.undecodable import UndecodableRecord


class Validated(NamedTuple):
    """An accepted record and its event (a tuple: one is built per input event)."""

    record: RawRecord
    event: StreamEvent
    document: dict[str, Any]
    """The value as orjson reads it, i.e. as produced: the input audit trail stores it."""


@dataclass(frozen=True, slots=True)
class Rejected:
    record: RawRecord
    dead_letter: DeadLetter

    @property
    def kind(self) -> DeadLetterKind:
        return self.dead_letter.error_kind


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value is no event: what its dead letter says."""

    kind: DeadLetterKind
    reason: str
    expected_type: str
    fields: tuple[str, ...] = ()

    @classmethod
    def of(cls, exc: ValidationError) -> Self:
        return cls(
            error_kind_for(exc),
            describe_validation_error(exc),
            exc.title,
            tuple(error_fields_of(exc)),
        )


Accepted = tuple[StreamEvent, dict[str, Any]]
"""The event and the document it was read from."""

_loads = orjson.loads
_dumps = orjson.dumps

TOMBSTONE_REASON = "record has no value (tombstone)"
TOO_DEEP_REASON = f"nested deeper than {MAX_JSON_DEPTH} levels; not parsed"
_RECURSION_LIMIT = "recursion limit exceeded"  # pydantic-core's parser past its depth


def check_value(
    raw: bytes | None, model: type[InputEvent], *, max_bytes: int = MAX_EVENT_BYTES
) -> Accepted | Refusal:
    """The verdict on one record value read from `model`'s topic; never raises."""
    if raw is not None and len(raw) <= max_bytes and b'"type"' in raw:
        # Maybe a control record (`schemas.stream`); an oversized value is refused unparsed.
        return check_as(raw, control_type(raw) or model, max_bytes)
    return check_as(raw, model, max_bytes)


def check_as(
    raw: bytes | None, target: type[StreamEvent], max_bytes: int = MAX_EVENT_BYTES
) -> Accepted | Refusal:
    """`check_value` once the record's model is known (a value without a `"type"` key is no
    control record: `replay --input` knows that before). Never raises."""
    if raw is None:
        return Refusal(DeadLetterKind.UNDECODABLE, TOMBSTONE_REASON, target.__name__)
    if len(raw) > max_bytes:
        reason = f"record is {len(raw)} bytes, over the {max_bytes}-byte cap; not parsed"
        return Refusal(DeadLetterKind.TOO_LARGE, reason, target.__name__)
    try:
        event = target.model_validate_json(raw)
        document = _loads(raw)
    except ValidationError as exc:
        return _refused_by_model(raw, exc)
    except orjson.JSONDecodeError as exc:
        return Refusal(DeadLetterKind.UNDECODABLE, not_standard_reason(exc), target.__name__)
    except Exception as exc:  # a validator's bug costs one dead letter, not the worker
        reason = f"validation failed unexpectedly ({type(exc).__name__})"
        return Refusal(DeadLetterKind.SCHEMA, reason, target.__name__)
    # `duplicate_key`'s first and cheapest proof inline (the hot path): a value that is its
    # document's own compact encoding repeats no key.
    compact = _dumps(document)
    if compact != raw:
        key = duplicate_key_given(raw, compact)
        if key is not None:
            return _duplicate(key, target.__name__)
    return event, document


def validate_records(
    records: Sequence[RawRecord], model: type[InputEvent]
) -> tuple[list[Validated], list[Rejected]]:
    """Validate every record of a batch; never raises for bad input."""
    accepted: list[Validated] = []
    rejected: list[Rejected] = []
    for record in records:
        outcome = check_value(record.value, model)
        if isinstance(outcome, Refusal):
            rejected.append(Rejected(record, _dead_letter(record, outcome)))
        else:
            accepted.append(Validated(record, outcome[0], outcome[1]))
    return accepted, rejected


def _duplicate(key: str, expected_type: str) -> Refusal:
    field = format_loc((key,))
    reason = f"duplicate key {field!r}: each key may appear once per object"
    return Refusal(DeadLetterKind.UNDECODABLE, reason, expected_type, (field,))


def _refused_by_model(raw: bytes, exc: ValidationError) -> Refusal:
    refusal = Refusal.of(exc)
    if refusal.kind is DeadLetterKind.SCHEMA:  # JSON that pydantic-core read: is it standard?
        try:
            document = _loads(raw)
        except orjson.JSONDecodeError as text_exc:
            reason = not_standard_reason(text_exc)
            return Refusal(DeadLetterKind.UNDECODABLE, reason, refusal.expected_type)
        key = duplicate_key(raw, document)
        if key is not None:
            return _duplicate(key, refusal.expected_type)
    elif _RECURSION_LIMIT in refusal.reason:  # the parser's message, e.g. "Invalid JSON: ..."
        return Refusal(DeadLetterKind.UNDECODABLE, TOO_DEEP_REASON, refusal.expected_type)
    return refusal


def _dead_letter(record: RawRecord, refusal: Refusal) -> DeadLetter:
    if isinstance(record, UndecodableRecord):  # a batch the consumer could not decode
        return record.batch.dead_letter(expected_type=refusal.expected_type)
    return DeadLetter.build(
        original=record.value or b"",
        original_key=record.key,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error_kind=refusal.kind,
        error=refusal.reason,
        error_fields=refusal.fields,
        record_ts=_instant_or_none(record.timestamp),
        expected_type=refusal.expected_type,
    )


def _instant_or_none(ms: Any) -> int | None:
    # A producer sets a record's timestamp (CreateTime) to any 64-bit value; one past what a
    # datetime holds made building the dead letter raise.
    return ms if type(ms) is int and EPOCH_MS_MIN <= ms <= EPOCH_MS_MAX else None
