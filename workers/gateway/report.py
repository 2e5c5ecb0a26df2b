"""`report()`: the tool-invocation event a gateway publishes after a call (the producer side).

Publishing needs a Kafka producer, and the gateway module stays free of aiokafka, so `report`
builds and validates the event and returns what to send (`Report`: topic, key, value); a
gateway sends it with its own producer, or hands an object with aiokafka's
``send_and_wait(topic, value, key=...)`` to `send_report`. Validation is `guardstream
publish`'s (`topics.publish.parse_event`): the fields go through the `ToolInvocation` wire
model, and a problem raises `InvalidEventError` naming the field, before anything is sent.
The key is `topics.keys.input_key`'s for a tool invocation (``<vendor>/<tool>``), so the event
lands in the partition of its breaker.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.codec import encode
from schemas.dead_letter import describe_validation_error
from schemas.events import DATA_CLASSES_ATTRIBUTE, ToolInvocation
from topics.catalog import TopicCatalog, TopicName
from topics.errors import InvalidEventError


@dataclass(frozen=True, slots=True)
class Report:
    """A validated tool-invocation event, ready to send."""

    topic: str
    key: bytes
    value: bytes
    event: ToolInvocation


class Producer(Protocol):
    """What `send_report` needs (aiokafka's AIOKafkaProducer has it)."""

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes) -> Any: ...


def report(
    vendor: str,
    tool: str,
    *,
    status: str,
    duration_ms: float,
    topic_prefix: str = "guardstream.",
    event_id: str | None = None,
    ts: datetime | None = None,
    cost_usd: Decimal | str | float = 0,
    tokens_in: int = 0,
    tokens_out: int = 0,
    data_classes: Sequence[str] = (),
    **fields: Any,
) -> Report:
    """The event for one call: `status` success | error | timeout | rejected, the scope
    (user, team, project, org, api_key_id, environment, session_id, model, ...) and anything
    else `ToolInvocation` accepts in `fields`. InvalidEventError if it is not a valid event.
    `event_id` defaults to a new UUID, `ts` to now (pass the call's own to make retries of a
    report duplicates the worker drops). `data_classes`: the classes the call carried, as
    declared to `check()`; they go in the attribute `data_classes`, and the worker audits a
    call that broke a data-class rule (`aud.risk.triggered`)."""
    document: Mapping[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "ts": ts or datetime.now(UTC),
        "vendor": vendor,
        "tool": tool,
        "status": status,
        "duration_ms": duration_ms,
        "cost_usd": str(cost_usd),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        **fields,
    }
    if data_classes:
        attributes = dict(document.get("attributes") or {})
        attributes[DATA_CLASSES_ATTRIBUTE] = ",".join(data_classes)
        document = {**document, "attributes": attributes}
    try:
        event = ToolInvocation.model_validate(document)
    except ValidationError as exc:
        raise InvalidEventError(
            f"{TopicName.TOOL_INVOCATIONS}: {describe_validation_error(exc)}"
        ) from None
    topic = TopicCatalog(prefix=topic_prefix).name(TopicName.TOOL_INVOCATIONS)
    key = f"{event.vendor}/{event.tool}".encode()
    return Report(topic, key, encode(event), event)


async def send_report(producer: Producer, built: Report) -> Any:
    """Send `built` with `producer` and wait for the broker's acknowledgement."""
    return await producer.send_and_wait(built.topic, built.value, key=built.key)
