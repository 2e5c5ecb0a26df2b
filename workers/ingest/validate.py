"""Raw record bytes -> a validated input event, or the reason it cannot be one. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from schemas.dead_letter import describe_validation_error

from schemas.events import InputEvent
from schemas.limits import MAX_EVENT_BYTES
from workers.batching.records import RawRecord


class RejectKind(StrEnum):
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNDECODABLE = "undecodable"
    SCHEMA = "schema"


@dataclass(frozen=True, slots=True)
class Rejected:
    record: RawRecord
    kind: RejectKind
    reason: str


@dataclass(frozen=True, slots=True)
class Validated:
    record: RawRecord
    event: InputEvent


_UNDECODABLE_ERROR_TYPES = frozenset({"json_invalid", "json_type", "model_type"})


def validate_records(
    records: Sequence[RawRecord], model: type[InputEvent]
) -> tuple[list[Validated], list[Rejected]]:
    """Validate every record of a batch; never raises for bad input."""
    parse = model.model_validate_json
    accepted: list[Validated] = []
    rejected: list[Rejected] = []
    for record in records:
        raw = record.value
        if not raw:
            rejected.append(Rejected(record, RejectKind.EMPTY, "record has no value"))
            continue
        if len(raw) > MAX_EVENT_BYTES:
            reason = f"record is {len(raw)} bytes, the limit is {MAX_EVENT_BYTES}"
            rejected.append(Rejected(record, RejectKind.TOO_LARGE, reason))
            continue
        try:
            accepted.append(Validated(record, parse(raw)))
        except ValidationError as exc:
            rejected.append(Rejected(record, _kind_of(exc), describe_validation_error(exc)))
    return accepted, rejected


def _kind_of(exc: ValidationError) -> RejectKind:
    # Not JSON at all, or JSON that is not an object: the bytes, not a field, are the problem.
    errors = exc.errors(include_url=False, include_input=False)
    if len(errors) == 1 and not errors[0]["loc"] and errors[0]["type"] in _UNDECODABLE_ERROR_TYPES:
        return RejectKind.UNDECODABLE
    if errors and errors[0]["type"] == "json_invalid":
        return RejectKind.UNDECODABLE
    return RejectKind.SCHEMA
