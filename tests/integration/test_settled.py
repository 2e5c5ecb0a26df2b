"""`topics.settled`: a chain's records committed behind another producer's open transaction are
waited for, and transactions begun after the chain's newest record are not (a stale audit-chain
head forked a chain, and one input batch was recorded twice, before the wait; a wait for the
whole partition blocked on the asking worker's own transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.audit import AuditSource
from schemas.codec import encode
from schemas.types import Severity
from topics.admin import TopicAdmin
from topics.catalog import Cleanup, TopicSpec
from topics.settled import UnsettledPartition, newest_offset, settled_end
from workers.audit.chain import AuditChain
from workers.audit.inputs import input_chain_id
from workers.audit.recover import last_record
from workers.shell.recovery import read_partition_trail

pytestmark = [pytest.mark.kafka]

CHAIN = "breakers-p1"


async def _topic(options: dict[str, str], name: str) -> TopicPartition:
    async with TopicAdmin(options) as admin:
        await admin.ensure([TopicSpec(name, "k", "v", 1, Cleanup.DELETE, retention_ms=-1)])
    return TopicPartition(name, 0)


def _record(chain: str, offsets: range, topic: str = "t.tool-invocations") -> list[bytes]:
    head = AuditChain(chain)
    return [
        encode(
            head.seal(
                "aud.tool.invocation",
                ts_ms=1_795_000_000_000,
                severity=Severity.INFO,
                policy_version="0" * 64,
                payload={},
                source=AuditSource(topic=topic, partition=1, offset=offset),
            )
        )
        for offset in offsets
    ]


@dataclass
class Scene:
    options: dict[str, str]
    audit: TopicPartition
    other: AIOKafkaProducer
    """Another chain's writer, whose transaction stays open."""
    writer: AIOKafkaProducer
    """The looked-up chain's writer."""


@pytest.fixture
async def scene(bootstrap_servers: str, topic_prefix: str) -> AsyncIterator[Scene]:
    """A one-partition audit topic and its two transactional writers."""
    options = {"bootstrap_servers": bootstrap_servers}
    audit = await _topic(options, f"{topic_prefix}.audit")
    other = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-other-chain")
    writer = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-chain")
    await other.start()
    await writer.start()
    yield Scene(options, audit, other, writer)
    await other.stop()
    await writer.stop()


async def _open_another_chains_transaction(other: AIOKafkaProducer, tp: TopicPartition) -> None:
    await other.begin_transaction()
    await other.send_and_wait(tp.topic, b"{}", key=b"another-chain", partition=0)


async def _commit(
    writer: AIOKafkaProducer, tp: TopicPartition, key: str, values: list[bytes]
) -> None:
    async with writer.transaction():
        for value in values:
            await writer.send_and_wait(tp.topic, value, key=key.encode(), partition=0)


async def test_a_chain_head_behind_an_open_transaction_is_waited_for(scene: Scene) -> None:
    options, tp, other, writer = scene.options, scene.audit, scene.other, scene.writer
    await _open_another_chains_transaction(other, tp)
    await _commit(writer, tp, CHAIN, _record(CHAIN, range(3)))
    lookup = asyncio.create_task(last_record(options, tp.topic, 1, CHAIN))
    await asyncio.sleep(1)
    assert not lookup.done()  # the stable offset is still at the open transaction
    await other.abort_transaction()
    head = await asyncio.wait_for(lookup, 30)
    assert head is not None  # before the wait: None, and the chain started again at seq 0
    assert head.seq == 2


async def test_recorded_input_behind_an_open_transaction_is_waited_for(scene: Scene) -> None:
    options, tp, other, writer = scene.options, scene.audit, scene.other, scene.writer
    chain = input_chain_id(1)
    records = _record(chain, range(9))
    await _commit(writer, tp, chain, records[:5])
    await _open_another_chains_transaction(other, tp)
    await _commit(writer, tp, chain, records[5:])
    lookup = asyncio.create_task(
        read_partition_trail(options, audit_topic=tp.topic, audit_partitions=1, partition=1)
    )
    await asyncio.sleep(1)
    assert not lookup.done()
    await other.commit_transaction()
    # Before the wait: offset 4, and offsets 5-8 were processed and recorded a second time.
    trail = await asyncio.wait_for(lookup, 30)
    assert trail.recorded == {"t.tool-invocations": 8}


async def test_a_transaction_begun_after_the_chains_newest_record_is_not_waited_for(
    scene: Scene,
) -> None:
    # The asking worker's own transactions: open while it looks a chain up inside a batch,
    # they cannot commit before the lookup ends (a wait for them timed production runs out).
    options, tp, other, writer = scene.options, scene.audit, scene.other, scene.writer
    await _commit(writer, tp, CHAIN, _record(CHAIN, range(2)))
    await _open_another_chains_transaction(other, tp)
    head = await asyncio.wait_for(last_record(options, tp.topic, 1, CHAIN), 10)
    assert head is not None
    assert head.seq == 1
    assert await last_record(options, tp.topic, 1, "a-new-chain") is None
    await other.abort_transaction()


async def test_a_transaction_that_stays_open_is_an_error_not_a_short_read(scene: Scene) -> None:
    options, tp, other, writer = scene.options, scene.audit, scene.other, scene.writer
    await _open_another_chains_transaction(other, tp)
    await _commit(writer, tp, CHAIN, _record(CHAIN, range(1)))
    assert await newest_offset(options, tp, CHAIN.encode()) == 1
    reader = AIOKafkaConsumer(
        **options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await reader.start()
    try:
        reader.assign([tp])
        with pytest.raises(UnsettledPartition, match="before offset 1"):
            await settled_end(options, reader, tp, CHAIN.encode(), timeout_s=1)
    finally:
        await reader.stop()
        await other.abort_transaction()
