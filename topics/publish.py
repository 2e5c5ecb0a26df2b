"""Validate-then-publish for producers: nothing invalid reaches an input topic from here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from schemas.clock import ClockTick
from schemas.codec import encode
from schemas.dead_letter import DeadLetterKind, describe_validation_error
from schemas.events import (
    INPUT_EVENT_TYPES,
    CostEvent,
    EventBase,
    InputEvent,
    LatencyEvent,
    ToolInvocation,
)
from schemas.limits import MAX_EVENT_BYTES
from schemas.override import BreakerOverride
from schemas.stream import CONTROL_TYPES, StreamEvent
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from topics.connect import start_client
from topics.keys import input_key
from workers.errors import InvalidEventError
from workers.ingest.validate import Accepted, Refusal, check_as, check_value

# Clock ticks are not keyed by anything they describe; a fixed key keeps them recognisable.
CLOCK_KEY = b"clock"

# A JSONL line may say which input topic it is for; without it the fields decide.
TYPE_FIELD = "type"
TYPE_ALIASES: Mapping[str, TopicName] = {
    "tool_invocation": TopicName.TOOL_INVOCATIONS,
    "tool-invocation": TopicName.TOOL_INVOCATIONS,
    "tool-invocations": TopicName.TOOL_INVOCATIONS,
    "cost": TopicName.COST_EVENTS,
    "cost_event": TopicName.COST_EVENTS,
    "cost-events": TopicName.COST_EVENTS,
    "latency": TopicName.LATENCY_EVENTS,
    "latency_event": TopicName.LATENCY_EVENTS,
    "latency-events": TopicName.LATENCY_EVENTS,
}


@dataclass(frozen=True, slots=True)
class Published:
    """Where a record landed."""

    topic: str
    partition: int
    offset: int


def topic_for(event: InputEvent | BreakerOverride) -> TopicName:
    if isinstance(event, CostEvent):
        return TopicName.COST_EVENTS
    if isinstance(event, LatencyEvent):
        return TopicName.LATENCY_EVENTS
    return TopicName.TOOL_INVOCATIONS


def parse_event(
    document: Mapping[str, Any] | bytes | str, topic: TopicName | None = None
) -> StreamEvent:
    """Validate one input event, clock tick or breaker override; the error names the field
    and the problem."""
    fields = orjson.loads(document) if isinstance(document, bytes | str) else dict(document)
    if not isinstance(fields, dict):
        raise InvalidEventError(f"an event must be a JSON object, got {type(fields).__name__}")
    control = CONTROL_TYPES.get(str(fields.get(TYPE_FIELD))) if topic is None else None
    if control is not None:
        try:
            return control.model_validate(fields)
        except ValidationError as exc:
            kind = fields[TYPE_FIELD]
            raise InvalidEventError(f"{kind}: {describe_validation_error(exc)}") from None
    declared = fields.pop(TYPE_FIELD, None)
    if topic is None and declared is not None:
        topic = TYPE_ALIASES.get(str(declared))
        if topic is None:
            raise InvalidEventError(f"{TYPE_FIELD}: unknown event type {str(declared)[:32]!r}")
    topic = topic or _infer_topic(fields)
    model = INPUT_EVENT_TYPES[str(topic)]
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidEventError(f"{topic}: {describe_validation_error(exc)}") from None


def decode_event(raw: bytes, *, max_bytes: int = MAX_EVENT_BYTES) -> StreamEvent:
    """One line of recorded input -> its event, or InvalidEventError with the worker's reason.

    The line is validated as the worker validates a record value (`workers.ingest.validate.
    check_value`: size cap, model, standard JSON, unique keys), so replay refuses what the
    worker dead-letters and says why in the same words. Its model: a control record by its
    `type`, as the worker tells them; a `type` naming an input topic (`TYPE_ALIASES`, the
    JSONL convention of `publish`: it picks the topic and is not kept in the event); else the
    fields decide (`_infer_topic`), guessed from the bytes (`"latency_ms"`; `"source"` without
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
    inferred = INPUT_EVENT_TYPES[str(_infer_topic(fields))]
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
    topic = TYPE_ALIASES.get(str(declared))
    if topic is None:
        raise InvalidEventError(f"{TYPE_FIELD}: unknown event type {str(declared)[:32]!r}")
    return INPUT_EVENT_TYPES[str(topic)], True


def _guessed_model(raw: bytes) -> type[InputEvent]:
    """The model the fields would decide (`_infer_topic`), guessed from the bytes."""
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


def _infer_topic(fields: Mapping[str, Any]) -> TopicName:
    if "latency_ms" in fields:
        return TopicName.LATENCY_EVENTS
    if "source" in fields and "tool" not in fields:
        return TopicName.COST_EVENTS
    return TopicName.TOOL_INVOCATIONS


class EventPublisher:
    """An idempotent, acks=all producer of validated input events."""

    def __init__(
        self, catalog: TopicCatalog, client_options: Mapping[str, Any], *, linger_ms: int = 5
    ) -> None:
        self._catalog = catalog
        self._bootstrap = str(client_options.get("bootstrap_servers", "?"))
        self._producer = AIOKafkaProducer(
            **client_options,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
        )

    async def __aenter__(self) -> EventPublisher:
        await start_client(self._producer, self._bootstrap, self._producer.stop)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._producer.stop()

    async def publish(self, event: InputEvent | BreakerOverride) -> Published:
        future = await self._send(event)
        metadata = await future
        return Published(metadata.topic, metadata.partition, metadata.offset)

    async def publish_clock(
        self,
        tick: ClockTick,
        topics: Iterable[TopicName] = INPUT_TOPICS,
        partitions: Iterable[int] | None = None,
    ) -> list[Published]:
        """Send `tick` to every partition (or the given ones) of `topics`: time passes per
        partition, so a tick must reach each partition whose breakers or budgets may wait."""
        futures = await self._send_clock(tick, topics, partitions)
        return [Published(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]

    async def publish_many(
        self, events: Iterable[StreamEvent], *, window: int = 10_000
    ) -> AsyncIterator[Published]:
        """Pipeline sends (up to ``window`` in flight) and yield coordinates in input order.
        A clock tick goes to every partition of every input topic (one coordinate each)."""
        pending: list[asyncio.Future[Any]] = []
        for event in events:
            if isinstance(event, ClockTick):
                pending.extend(await self._send_clock(event, INPUT_TOPICS, None))
            else:
                pending.append(await self._send(event))
            if len(pending) >= window:
                for metadata in await asyncio.gather(*pending):
                    yield Published(metadata.topic, metadata.partition, metadata.offset)
                pending.clear()
        for metadata in await asyncio.gather(*pending):
            yield Published(metadata.topic, metadata.partition, metadata.offset)

    async def send_raw(
        self, topic: TopicName, key: bytes | None, value: bytes
    ) -> asyncio.Future[Any]:
        """Send bytes as they are: for traffic generators that inject corrupt records on purpose."""
        future = await self._producer.send(self._catalog.name(topic), value=value, key=key)
        return cast("asyncio.Future[Any]", future)

    async def flush(self) -> None:
        await self._producer.flush()

    async def _send_clock(
        self, tick: ClockTick, topics: Iterable[TopicName], partitions: Iterable[int] | None
    ) -> list[asyncio.Future[Any]]:
        value = encode(tick)
        futures: list[asyncio.Future[Any]] = []
        for logical in topics:
            topic = self._catalog.name(logical)
            targets = partitions
            if targets is None:
                targets = sorted(await self._producer.partitions_for(topic))
            for partition in targets:
                future = await self._producer.send(
                    topic, value=value, key=CLOCK_KEY, partition=partition
                )
                futures.append(cast("asyncio.Future[Any]", future))
        return futures

    async def _send(self, event: InputEvent | BreakerOverride) -> asyncio.Future[Any]:
        topic = self._catalog.name(topic_for(event))
        future = await self._producer.send(topic, value=encode(event), key=input_key(event))
        return cast("asyncio.Future[Any]", future)
