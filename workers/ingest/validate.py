"""Raw record bytes -> a validated input event, or the dead letter saying why not. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterKind
from schemas.events import InputEvent
from schemas.limits import MAX_EVENT_BYTES
from schemas.stream import StreamEvent, control_type
from workers.batching.records import RawRecord
from workers.batching.undecodable import UndecodableRecord


class Validated(NamedTuple):
    """An accepted record and its event (a tuple: one is built per input event)."""

    record: RawRecord
    event: StreamEvent


@dataclass(frozen=True, slots=True)
class Rejected:
    record: RawRecord
    dead_letter: DeadLetter

    @property
    def kind(self) -> DeadLetterKind:
        return self.dead_letter.error_kind


def validate_records(
    records: Sequence[RawRecord], model: type[InputEvent]
) -> tuple[list[Validated], list[Rejected]]:
    """Validate every record of a batch; never raises for bad input."""
    parse = model.model_validate_json
    accepted: list[Validated] = []
    rejected: list[Rejected] = []
    for record in records:
        raw = record.value
        if raw is None or len(raw) > MAX_EVENT_BYTES:
            rejected.append(Rejected(record, _unparsed(record, model)))
            continue
        try:
            control = control_type(raw)
            event = parse(raw) if control is None else control.model_validate_json(raw)
            accepted.append(Validated(record, event))
        except ValidationError as exc:
            letter = DeadLetter.from_validation_error(
                exc,
                original=raw,
                original_key=record.key,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                record_ts=record.timestamp,
            )
            rejected.append(Rejected(record, letter))
    return accepted, rejected


def _unparsed(record: RawRecord, model: type[InputEvent]) -> DeadLetter:
    if isinstance(record, UndecodableRecord):  # a batch the consumer could not decode
        return record.batch.dead_letter(expected_type=model.__name__)
    raw = record.value
    if raw is None:
        kind, reason = DeadLetterKind.UNDECODABLE, "record has no value (tombstone)"
    else:
        kind = DeadLetterKind.TOO_LARGE
        reason = f"record is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte cap; not parsed"
    return DeadLetter.build(
        original=raw or b"",
        original_key=record.key,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error_kind=kind,
        error=reason,
        record_ts=record.timestamp,
        expected_type=model.__name__,
    )
