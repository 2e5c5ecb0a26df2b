"""One line of recorded input -> its event, validated as the worker validates a record.

`replay --input` (and the benchmarks) read JSONL files of input events with `decode_event`:
the same checks as the ingest stage (`workers.ingest.validate`), so a line replay refuses is a
record the worker dead-letters, for the same reason in the same words. It lives here, not
beside the producer in `topics.publish`, because those checks belong to the worker.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from schemas.dead_letter import DeadLetterKind
from schemas.events import (
    INPUT_EVENT_TYPES,
    CostEvent,
    EventBase,
    InputEvent,
    LatencyEvent,
    ToolInvocation,
)
from schemas.limits import MAX_EVENT_BYTES
from schemas.stream import CONTROL_TYPES, StreamEvent
from topics.publish import TYPE_FIELD, declared_topic, infer_topic
from workers.errors import InvalidEventError
from workers.ingest.validate import Accepted, Refusal, check_as, check_value


def decode_event(raw: bytes, *, max_bytes: int = MAX_EVENT_BYTES) -> StreamEvent:
    """One line of recorded input -> its event, or InvalidEventError with the worker's reason.

    The line is validated as the worker validates a record value (`workers.ingest.validate.
    check_value`: size cap, model, standard JSON, unique keys), so replay refuses what the
    worker dead-letters and says why in the same words. Its model: a control record by its
    `type`, as the worker tells them; a `type` naming an input topic (`TYPE_ALIASES`, the
    JSONL convention of `publish`: it picks the topic and is not kept in the event); else the
    fields decide (`infer_topic`), guessed from the bytes (`"latency_ms"`; `"source"` without
    `"tool"`; else a tool invocation) and settled on the parsed fields when the guess fails.
    """
    # Without a `"type"` there is no control record and no declared topic: one scan for both.
    # An oversized line is refused unparsed, like the worker's record.
    typed = len(raw) <= max_bytes and b'"type"' in raw
    model, declared = _declared_model(raw) if typed else (_guessed_model(raw), False)
    if typed:
        outcome = check_value(raw, model, max_bytes=max_bytes)
    else:
        outcome = check_as(raw, model, max_bytes=max_bytes)
    if isinstance(outcome, Refusal):
        if outcome.kind is DeadLetterKind.SCHEMA and not declared:
            outcome = _as_inferred(raw, model, outcome, max_bytes)
        if isinstance(outcome, Refusal):
            raise InvalidEventError(_line_reason(outcome))
    event = outcome[0]
    if declared and isinstance(event, EventBase) and TYPE_FIELD in event.attributes:
        # The worker would keep it as an attribute; `publish` drops it, so no record has it.
        attributes = {k: v for k, v in event.attributes.items() if k != TYPE_FIELD}
        event = event.model_copy(update={"attributes": attributes})
    return event


def _as_inferred(
    raw: bytes, guessed: type[InputEvent], refusal: Refusal, max_bytes: int
) -> Accepted | Refusal:
    """The verdict as the model the fields decide, when the byte guess was another one."""
    fields = orjson.loads(raw)  # standard JSON: a schema refusal passed the text checks
    if not isinstance(fields, dict):
        return refusal
    inferred = INPUT_EVENT_TYPES[str(infer_topic(fields))]
    return refusal if inferred is guessed else check_as(raw, inferred, max_bytes=max_bytes)


def _declared_model(raw: bytes) -> tuple[type[InputEvent], bool]:
    """The model of a line with a `"type"` in it, and whether its `type` field named it."""
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fields = None  # check_value says why
    declared = fields.get(TYPE_FIELD) if isinstance(fields, dict) else None
    if declared is None or str(declared) in CONTROL_TYPES:
        return _guessed_model(raw), False  # a control record is check_value's to tell
    return INPUT_EVENT_TYPES[str(declared_topic(declared))], True


def _guessed_model(raw: bytes) -> type[InputEvent]:
    """The model the fields would decide (`infer_topic`), guessed from the bytes."""
    if b'"latency_ms"' in raw:
        return LatencyEvent
    if b'"source"' in raw and b'"tool"' not in raw:
        return CostEvent
    return ToolInvocation


_LABELS: Mapping[str, str] = {
    **{model.__name__: topic for topic, model in INPUT_EVENT_TYPES.items()},
    **{control.__name__: kind for kind, control in CONTROL_TYPES.items()},
}


def _line_reason(refusal: Refusal) -> str:
    """What replay prints for a refused line: the dead letter's reason, under a label."""
    if refusal.kind is DeadLetterKind.UNDECODABLE:
        return f"not valid JSON: {refusal.reason}"
    if refusal.kind is DeadLetterKind.SCHEMA:
        return f"{_LABELS.get(refusal.expected_type, refusal.expected_type)}: {refusal.reason}"
    return refusal.reason
