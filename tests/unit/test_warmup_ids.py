"""De-duplication memory rebuilt after a restart remembers what the stage accepted, no more.

`warmup.remembered_id` reads the ids of the records before a partition's first batch; a
record the stage refused was dead-lettered and never remembered, so its id must not be
remembered on a restart either, or a valid retry of it is dropped as a duplicate that an
uninterrupted worker would have accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from schemas.events import ToolInvocation
from workers.batching.records import RawBatch, StoredRecord
from workers.ingest.stage import IngestStage
from workers.ingest.warmup import remembered_id

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000
CALL = {"vendor": "openai", "tool": "chat", "status": "success", "duration_ms": 12}
OVERRIDE = {"type": "breaker_override", "vendor": "openai", "tool": "chat", "action": "reset"}


def call(event_id: str, **changes: object) -> bytes:
    return orjson.dumps({"event_id": event_id, "ts": TS_MS, **CALL, **changes})


def batch(values: Sequence[bytes | None], first_offset: int = 0) -> RawBatch:
    records = [
        StoredRecord(TOPIC, 0, first_offset + i, TS_MS, None, value)
        for i, value in enumerate(values)
    ]
    return RawBatch(TOPIC, 0, records)


def stage() -> IngestStage:
    return IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=1000)


@pytest.mark.parametrize(
    ("earlier", "retry", "retry_accepted"),
    [
        # Refused, so never remembered: the valid retry is accepted.
        pytest.param(call("a", duration_ms=True), call("a"), True, id="boolean-number"),
        pytest.param(call("a", ts=-1000), call("a"), True, id="event-time-before-1970"),
        pytest.param(call("a")[:-1] + b',"x":NaN}', call("a"), True, id="nan"),
        pytest.param(call("a")[:-1] + b',"vendor":"x"}', call("a"), True, id="duplicate-key"),
        # Accepted under its default id: the retry is a duplicate.
        pytest.param(
            orjson.dumps({**OVERRIDE, "ts": TS_MS}),
            orjson.dumps({**OVERRIDE, "ts": TS_MS}),
            False,
            id="override-default-id",
        ),
    ],
)
def test_a_restart_decides_like_an_uninterrupted_stage(
    earlier: bytes, retry: bytes, retry_accepted: bool
) -> None:
    history = [call("before"), earlier, call("after")]
    uninterrupted = stage()
    uninterrupted.process(batch(history))
    expected = uninterrupted.process(batch([retry], first_offset=len(history)))

    restarted = stage()
    seen = [key for value in history if (key := remembered_id(value, ToolInvocation))]
    restarted.recall(TOPIC, 0, seen)
    got = restarted.process(batch([retry], first_offset=len(history)))

    assert len(expected.accepted) == int(retry_accepted)
    assert [item.event.event_id for item in got.accepted] == [
        item.event.event_id for item in expected.accepted
    ]


def test_ticks_and_overrides_are_remembered_with_their_default_ids() -> None:
    tick = orjson.dumps({"type": "clock", "ts": TS_MS})
    override = orjson.dumps({**OVERRIDE, "ts": TS_MS})
    assert remembered_id(tick, ToolInvocation) == (f"clock-{TS_MS}", TS_MS)
    assert remembered_id(override, ToolInvocation) == (f"override-openai/chat-{TS_MS}", TS_MS)
    assert remembered_id(None, ToolInvocation) is None
