"""The ingest stage against a real broker, with the worker run as a user runs it."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.dead_letter import DeadLetter
from schemas.events import CostEvent, InputEvent, LatencyEvent, ToolInvocation
from tests.support.worker_process import cli_env, running_worker
from topics.catalog import TopicCatalog, TopicName
from topics.publish import EventPublisher

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ACCEPTED = "guardstream_events_accepted_total"
DUPLICATE = "guardstream_events_duplicate_total"
DEAD = "guardstream_events_dead_lettered_total"
TS = 1_795_000_000_000


def valid_events(count: int) -> list[InputEvent]:
    rnd = random.Random(11)
    events: list[InputEvent] = []
    for i in range(count):
        kind = i % 3
        common = {"event_id": f"ev-{i}", "ts": TS + i}
        if kind == 0:
            events.append(
                ToolInvocation.model_validate(
                    {
                        **common,
                        "vendor": rnd.choice(["openai", "anthropic"]),
                        "tool": "chat",
                        "status": "success",
                        "duration_ms": 120.5,
                        "tokens_in": 10,
                        "tokens_out": 5,
                        "cost_usd": "0.0001",
                        "team": "research",
                    }
                )
            )
        elif kind == 1:
            events.append(
                CostEvent.model_validate(
                    {**common, "team": "support", "cost_usd": "1.25", "source": "billing"}
                )
            )
        else:
            events.append(
                LatencyEvent.model_validate(
                    {
                        **common,
                        "vendor": "google",
                        "tool": "search",
                        "latency_ms": 80,
                        "kind": "probe",
                    }
                )
            )
    return events


def malformed_records() -> list[tuple[str, bytes | None]]:
    """(reason tag, raw value) - 100 records covering every way input can be bad."""
    base = {
        "event_id": "bad",
        "ts": TS,
        "vendor": "openai",
        "tool": "chat",
        "status": "success",
        "duration_ms": 1,
    }
    shapes: list[tuple[str, bytes]] = [
        ("bad-json", b'{"event_id": "x", "ts": '),
        ("not-utf8", b'{"event_id": "\xff\xfe"}'),
        ("json-array", b"[1, 2, 3]"),
        ("missing-field", orjson.dumps({k: v for k, v in base.items() if k != "tool"})),
        ("negative-cost", orjson.dumps({**base, "cost_usd": -0.5})),
        ("oversized-string", orjson.dumps({**base, "tool": "t" * 10_000})),
        ("wrong-type", orjson.dumps({**base, "duration_ms": "slow"})),
        ("bad-status", orjson.dumps({**base, "status": "exploded"})),
        ("naive-ts", orjson.dumps({**base, "ts": "2026-01-01T00:00:00"})),
        (
            "too-many-attributes",
            orjson.dumps({**base, "attributes": {f"k{i}": "v" for i in range(500)}}),
        ),
        ("too-large", orjson.dumps({**base, "attributes": {"blob": "x" * 70_000}})),
    ]
    records: list[tuple[str, bytes | None]] = []
    for i in range(100):
        tag, value = shapes[i % len(shapes)]
        records.append((tag, value))
    return records


async def _publish_malformed(
    bootstrap: str, catalog: TopicCatalog, records: list[tuple[str, bytes | None]]
) -> dict[tuple[int, int], str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2_000_000)
    await producer.start()
    where: dict[tuple[int, int], str] = {}
    try:
        for tag, value in records:
            meta = await producer.send_and_wait(
                catalog.name(TopicName.TOOL_INVOCATIONS), value=value, key=b"openai/chat"
            )
            where[(meta.partition, meta.offset)] = tag
    finally:
        await producer.stop()
    return where


async def _read_dead_letters(bootstrap: str, catalog: TopicCatalog, count: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        catalog.name(TopicName.DEAD_LETTER),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        # Only records of committed transactions count (production mode writes in them).
        isolation_level="read_committed",
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        async with asyncio.timeout(60):
            while len(letters) < count:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    letters.extend(DeadLetter.model_validate_json(r.value) for r in records)
        extra = await consumer.getmany(timeout_ms=2000)
        letters.extend(DeadLetter.model_validate_json(r.value) for rs in extra.values() for r in rs)
    finally:
        await consumer.stop()
    return letters


async def test_valid_events_accepted_once_and_malformed_dead_lettered(
    bootstrap_servers: str, topic_prefix: str, catalog: TopicCatalog, tmp_path: Path
) -> None:
    events = valid_events(10_000)
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        published = [p async for p in publisher.publish_many(events)]
    assert len(published) == 10_000
    bad = malformed_records()
    bad_at = await _publish_malformed(bootstrap_servers, catalog, bad)

    with running_worker(cli_env(bootstrap_servers, topic_prefix), tmp_path) as worker:
        assert worker.wait_for(DEAD, 100) == 100
        assert worker.wait_for(ACCEPTED, 10_000) == 10_000
        await asyncio.sleep(2)  # anything extra would show up now
        assert worker.total(ACCEPTED) == 10_000
        assert worker.total(DUPLICATE) == 0
        assert worker.total(DEAD) == 100
        assert worker.alive(), worker.log_tail()

    letters = await _read_dead_letters(bootstrap_servers, catalog, 100)
    assert len(letters) == 100
    for letter in letters:
        assert letter.topic == catalog.name(TopicName.TOOL_INVOCATIONS)
        tag = bad_at[(letter.partition, letter.offset)]
        assert letter.error, tag
        expected_kind = {
            "bad-json": "undecodable",
            "not-utf8": "undecodable",
            "json-array": "undecodable",
            "too-large": "too_large",
        }.get(tag, "schema")
        assert letter.error_kind == expected_kind, (tag, letter.error)
        if tag == "negative-cost":
            assert "cost_usd" in letter.error
        if tag == "missing-field":
            assert "tool" in letter.error
        if tag != "too-large":
            assert letter.original_size == len(next(v for t, v in bad if t == tag) or b"")


async def test_duplicate_event_ids_counted_once(
    bootstrap_servers: str, topic_prefix: str, catalog: TopicCatalog, tmp_path: Path
) -> None:
    events = [e for e in valid_events(1_500) if isinstance(e, ToolInvocation)]
    retries = events[:200]  # producer retries: same event, same key, so same partition
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        _ = [p async for p in publisher.publish_many(events + retries)]

    with running_worker(cli_env(bootstrap_servers, topic_prefix), tmp_path) as worker:
        assert worker.wait_for(ACCEPTED, len(events)) == len(events)
        assert worker.wait_for(DUPLICATE, 200) == 200
        await asyncio.sleep(1)
        assert worker.total(ACCEPTED) == len(events)
        assert worker.total(DUPLICATE) == 200
        assert worker.total(DEAD) == 0


async def test_money_is_exact_on_the_wire(bootstrap_servers: str, catalog: TopicCatalog) -> None:
    events = valid_events(3)
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        where = await publisher.publish(events[0])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(where.topic, where.partition)
        consumer.assign([tp])
        consumer.seek(tp, where.offset)
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    decoded = ToolInvocation.model_validate_json(record.value)
    assert decoded.cost_usd == Decimal("0.0001")
    assert decoded == events[0]


async def test_dedup_memory_survives_a_worker_restart(
    bootstrap_servers: str, topic_prefix: str, catalog: TopicCatalog, tmp_path: Path
) -> None:
    calls = [e for e in valid_events(3_000) if isinstance(e, ToolInvocation)]
    first, later = calls[:900], calls[900:]
    env = cli_env(bootstrap_servers, topic_prefix)
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        _ = [p async for p in publisher.publish_many(first)]
    with running_worker(env, tmp_path / "run1") as worker:
        assert worker.wait_for(ACCEPTED, len(first)) == len(first)

    # While no worker runs: producer retries of already-processed events, and new events.
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        _ = [p async for p in publisher.publish_many(first[:200] + later)]
    with running_worker(env, tmp_path / "run2") as worker:
        assert worker.wait_for(ACCEPTED, len(later)) == len(later)
        assert worker.wait_for(DUPLICATE, 200) == 200
        await asyncio.sleep(1)
        assert worker.total(ACCEPTED) == len(later)
        assert worker.total(DUPLICATE) == 200


async def test_production_mode_runs_exactly_once_with_batches(
    bootstrap_servers: str, topic_prefix: str, catalog: TopicCatalog, tmp_path: Path
) -> None:
    """Production mode means processing_guarantee=exactly_once: the batch hand-off must keep
    working under Faust's transactional producer, and dead letters must be committed."""
    events = valid_events(2_000)
    async with EventPublisher(catalog, {"bootstrap_servers": bootstrap_servers}) as publisher:
        _ = [p async for p in publisher.publish_many(events)]
    bad = malformed_records()[:22]
    await _publish_malformed(bootstrap_servers, catalog, bad)

    env = cli_env(bootstrap_servers, topic_prefix, GUARDSTREAM_MODE="production")
    with running_worker(env, tmp_path) as worker:
        assert worker.wait_for(ACCEPTED, 2_000) == 2_000
        assert worker.wait_for(DEAD, 22) == 22
        assert worker.alive(), worker.log_tail()
    letters = await _read_dead_letters(bootstrap_servers, catalog, 22)
    assert len(letters) == 22
