"""The ingest stage without Kafka: validation, dead letters, de-duplication, memory rebuild."""

from __future__ import annotations

import orjson
import pytest

from schemas.dead_letter import DeadLetterKind
from schemas.events import ToolInvocation
from schemas.limits import MAX_EVENT_BYTES
from workers.batching.records import RawBatch
from workers.batching.records import StoredRecord as Record
from workers.ingest.stage import IngestStage
from workers.ingest.warmup import _lookback_start

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000


def call(event_id: str, ts_ms: int = TS_MS, **extra: object) -> bytes:
    document = {
        "event_id": event_id,
        "ts": ts_ms,
        "vendor": "openai",
        "tool": "chat",
        "status": "success",
        "duration_ms": 12,
        **extra,
    }
    return orjson.dumps(document)


def batch(values: list[bytes | None], partition: int = 0, first_offset: int = 0) -> RawBatch:
    records = [
        Record(TOPIC, partition, first_offset + i, TS_MS, b"openai/chat", value)
        for i, value in enumerate(values)
    ]
    return RawBatch(TOPIC, partition, records)


def stage(horizon_ms: int = 60_000, max_ids: int = 1000) -> IngestStage:
    return IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=horizon_ms, dedup_max_ids=max_ids)


@pytest.mark.parametrize(
    ("value", "kind", "in_reason"),
    [
        (b"{not json", DeadLetterKind.UNDECODABLE, "Invalid JSON"),
        (b"[]", DeadLetterKind.UNDECODABLE, ""),
        (None, DeadLetterKind.UNDECODABLE, "tombstone"),
        (call("x", cost_usd=-1), DeadLetterKind.SCHEMA, "cost_usd"),
        (orjson.dumps({"event_id": "x"}), DeadLetterKind.SCHEMA, "vendor"),
        (b"{" + b" " * MAX_EVENT_BYTES + b"}", DeadLetterKind.TOO_LARGE, "65538 bytes"),
    ],
)
def test_bad_records_become_dead_letters_with_coordinates(
    value: bytes | None, kind: DeadLetterKind, in_reason: str
) -> None:
    result = stage().process(batch([call("ok"), value], partition=2, first_offset=40))
    assert [item.event.event_id for item in result.accepted] == ["ok"]
    assert len(result.rejected) == 1
    letter = result.rejected[0].dead_letter
    assert (letter.error_kind, letter.topic, letter.partition, letter.offset) == (
        kind,
        TOPIC,
        2,
        41,
    )
    assert in_reason in letter.error
    assert letter.original_key == b"openai/chat"


def test_duplicates_are_counted_once_per_partition() -> None:
    ingest = stage()
    first = ingest.process(batch([call("a"), call("b"), call("a")]))
    second = ingest.process(batch([call("b"), call("c")], first_offset=3))
    other_partition = ingest.process(batch([call("a")], partition=1))
    assert [i.event.event_id for i in first.accepted] == ["a", "b"]
    assert first.duplicates == 1
    assert [i.event.event_id for i in second.accepted] == ["c"]
    assert second.duplicates == 1
    assert other_partition.duplicates == 0  # memory is per partition: keys decide partitions
    assert ingest.counters.accepted[TOPIC] == 4
    assert ingest.counters.duplicates[TOPIC] == 2


def test_recalled_memory_gives_the_verdicts_of_an_uninterrupted_stage() -> None:
    history = [call(f"e{i}", TS_MS + i * 1000) for i in range(100)]
    retries = [history[5], history[99], call("new", TS_MS + 100_000)]
    uninterrupted = stage(horizon_ms=30_000)
    uninterrupted.process(batch(history))
    remembered = uninterrupted.tracked_ids()
    expected = uninterrupted.process(batch(retries, first_offset=100))

    restarted = stage(horizon_ms=30_000)
    assert not restarted.remembers(TOPIC, 0)
    seen = [(f"e{i}", TS_MS + i * 1000) for i in range(100)]
    kept = restarted.recall(TOPIC, 0, seen)
    got = restarted.process(batch(retries, first_offset=100))
    assert kept == remembered
    assert [i.event.event_id for i in got.accepted] == [i.event.event_id for i in expected.accepted]
    assert [i.event.event_id for i in got.accepted] == ["e5", "new"]  # e5 is past the horizon
    assert got.duplicates == expected.duplicates == 1


def test_forgetting_a_revoked_partition_drops_its_memory() -> None:
    ingest = stage()
    ingest.process(batch([call("a")]))
    ingest.forget_partition(TOPIC, 0)
    assert not ingest.remembers(TOPIC, 0)
    assert ingest.process(batch([call("a")], first_offset=1)).duplicates == 0


@pytest.mark.parametrize(
    ("first_offset", "offset_for_time", "beginning", "max_ids", "start"),
    [
        (1000, 400, 0, 10_000, 400),  # the time bound decides
        (1000, None, 0, 10_000, 1000),  # nothing recent enough: read nothing
        (1000, 400, 700, 10_000, 700),  # retention already deleted the older records
        (1000, 0, 0, 100, 900),  # never more than the memory cap back
        (1000, 1200, 0, 10_000, 1000),  # a time bound past the batch reads nothing
    ],
)
def test_lookback_start(
    first_offset: int, offset_for_time: int | None, beginning: int, max_ids: int, start: int
) -> None:
    assert _lookback_start(first_offset, offset_for_time, beginning, max_ids) == start


def test_clock_ticks_are_accepted_in_stream_order_next_to_events() -> None:
    tick = orjson.dumps({"type": "clock", "ts": TS_MS + 5})
    ingest = stage()
    result = ingest.process(batch([call("a"), tick, call("b")]))
    # Counted apart: ticks are time passing, not traffic.
    assert (ingest.counters.accepted[TOPIC], ingest.counters.clock_ticks[TOPIC]) == (2, 1)
    assert [type(item.event).__name__ for item in result.accepted] == [
        "ToolInvocation",
        "ClockTick",
        "ToolInvocation",
    ]
    assert result.accepted[1].event.event_id == f"clock-{TS_MS + 5}"
    assert result.rejected == []


def test_an_event_that_only_mentions_clock_is_validated_as_an_event() -> None:
    # A tool named "clock" with a "type" attribute is a real call, not a tick.
    value = call("c", tool="clock", kind="clock")
    result = stage().process(batch([value]))
    [item] = result.accepted
    assert isinstance(item.event, ToolInvocation)
    assert item.event.attributes["kind"] == "clock"


def test_a_malformed_tick_is_dead_lettered_naming_the_field() -> None:
    result = stage().process(batch([orjson.dumps({"type": "clock", "ts": "soon"})]))
    [rejected] = result.rejected
    assert rejected.kind is DeadLetterKind.SCHEMA
    assert rejected.dead_letter.error.startswith("ts:"), rejected.dead_letter.error


def test_breaker_overrides_are_recognised_and_bad_ones_dead_lettered() -> None:
    good = orjson.dumps(
        {"type": "breaker_override", "ts": TS_MS, "vendor": "openai", "tool": "chat",
         "action": "reset"}
    )  # fmt: skip
    bad = orjson.dumps({"type": "breaker_override", "ts": TS_MS, "vendor": "openai"})
    result = stage().process(batch([good, bad]))
    [item] = result.accepted
    assert type(item.event).__name__ == "BreakerOverride"
    [rejected] = result.rejected
    assert "tool" in rejected.dead_letter.error
