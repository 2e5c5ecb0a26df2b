"""Validate-then-publish for producers: nothing invalid reaches an input topic from here.

`parse_event` checks a document against the wire models (schemas/); reading a recorded line
as the worker's ingest stage reads a record is `workers.ingest.input_lines.decode_event`,
which sits above topics/ because it runs the worker's own checks.
"""

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
from schemas.dead_letter import describe_validation_error
from schemas.events import INPUT_EVENT_TYPES, CostEvent, InputEvent, LatencyEvent
from schemas.override import BreakerOverride
from schemas.stream import CONTROL_TYPES, StreamEvent
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from topics.connect import start_client
from topics.errors import InvalidEventError
from topics.keys import input_key

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
        topic = declared_topic(declared)
    topic = topic or infer_topic(fields)
    model = INPUT_EVENT_TYPES[str(topic)]
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidEventError(f"{topic}: {describe_validation_error(exc)}") from None


def declared_topic(declared: object) -> TopicName:
    """The input topic a line's `type` field names (`TYPE_ALIASES`); any other is refused."""
    topic = TYPE_ALIASES.get(str(declared))
    if topic is None:
        raise InvalidEventError(f"{TYPE_FIELD}: unknown event type {str(declared)[:32]!r}")
    return topic


def infer_topic(fields: Mapping[str, Any]) -> TopicName:
    """The input topic of an event without a `type`, told by its fields."""
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
