"""`topics.settled`: a reader waits for the transactions open when it asked, so records
committed after an open transaction are not missed (a stale audit-chain head forked a chain
and one input batch was recorded twice before this wait existed)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import encode
from schemas.types import Severity
from topics.admin import TopicAdmin
from topics.catalog import Cleanup, TopicSpec
from topics.settled import settled_end
from workers.audit.chain import AuditChain
from workers.audit.recover import last_record

pytestmark = [pytest.mark.kafka]


async def _topic(options: dict[str, str], name: str) -> TopicPartition:
    async with TopicAdmin(options) as admin:
        await admin.ensure([TopicSpec(name, "k", "v", 1, Cleanup.DELETE, retention_ms=-1)])
    return TopicPartition(name, 0)


def _committed_reader(options: dict[str, str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )


async def test_a_record_committed_after_an_open_transaction_is_waited_for(
    bootstrap_servers: str, topic_prefix: str
) -> None:
    options = {"bootstrap_servers": bootstrap_servers}
    tp = await _topic(options, f"{topic_prefix}.settled")
    slow = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-slow")
    quick = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-quick")
    await slow.start()
    await quick.start()
    reader = _committed_reader(options)
    await reader.start()
    try:
        await slow.begin_transaction()
        await slow.send_and_wait(tp.topic, b"open", partition=0)
        async with quick.transaction():
            await quick.send_and_wait(tp.topic, b"committed", partition=0)
        # The stable offset stops at the open transaction: the committed record is hidden.
        assert (await reader.end_offsets([tp]))[tp] == 0
        waiting = asyncio.create_task(settled_end(options, reader, tp, timeout_s=60))
        await asyncio.sleep(1)
        assert not waiting.done()  # it waits while the transaction is open
        await slow.abort_transaction()
        end = await asyncio.wait_for(waiting, 30)
        assert end >= 2  # the aborted record, the committed one and the markers are settled
    finally:
        await reader.stop()
        await slow.stop()
        await quick.stop()


async def test_after_the_timeout_it_reads_what_is_stable(
    bootstrap_servers: str, topic_prefix: str
) -> None:
    options = {"bootstrap_servers": bootstrap_servers}
    tp = await _topic(options, f"{topic_prefix}.unsettled")
    slow = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-stuck")
    await slow.start()
    reader = _committed_reader(options)
    await reader.start()
    try:
        await slow.begin_transaction()
        await slow.send_and_wait(tp.topic, b"open", partition=0)
        assert await settled_end(options, reader, tp, timeout_s=1) == 0
        await slow.abort_transaction()
    finally:
        await reader.stop()
        await slow.stop()


async def test_a_chain_head_behind_an_open_transaction_is_found(
    bootstrap_servers: str, topic_prefix: str
) -> None:
    options = {"bootstrap_servers": bootstrap_servers}
    tp = await _topic(options, f"{topic_prefix}.audit")
    slow = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-other-chain")
    writer = AIOKafkaProducer(**options, transactional_id=f"{topic_prefix}-chain")
    await slow.start()
    await writer.start()
    try:
        await slow.begin_transaction()
        await slow.send_and_wait(tp.topic, b"{}", key=b"another-chain", partition=0)
        record = encode(
            AuditChain("breakers-p1").seal(
                "aud.breaker.transition",
                ts_ms=1_795_000_000_000,
                severity=Severity.INFO,
                policy_version="0" * 64,
                payload={},
            )
        )
        async with writer.transaction():
            await writer.send_and_wait(tp.topic, record, key=b"breakers-p1", partition=0)
        lookup = asyncio.create_task(last_record(options, tp.topic, 1, "breakers-p1"))
        await asyncio.sleep(1)
        await slow.abort_transaction()
        head = await asyncio.wait_for(lookup, 30)
        assert head is not None  # before the wait: None, a new chain
        assert head.seq == 0
    finally:
        await slow.stop()
        await writer.stop()
