"""Exact state after a restart or rebalance (DESIGN §10, issue 6; shell: Kafka I/O).

Kernel state lives in the worker. Instead of a changelog written on the hot path, a worker
that gets a partition rebuilds the state from what Kafka already holds, up to the first record
it is about to process, through the same pure code, publishing nothing:

- a counter (`budget-spend`, `slo-counts` partition): its own partition from the beginning up
  to the batch's first offset, through its `RoutedCounting` — held items and all, so nothing
  routed before a crash is lost or counted twice;
- a direct kernel's core of input partition N (breakers): the forensic trail's `input-p<N>`
  chain (every input event the worker processed, in processing order, committed in the same
  transaction as the input offsets), through the core's deciders -- only with exactly-once
  processing, where the trail and the offsets cannot disagree.

What this needs: the routed topics' retention must cover the longest budget period or SLO
window (their default is the input topics' 7 d), and the audit level forensic for breakers.
The cost grows with that history; a snapshot of the engines would bound it (not built).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from workers.audit.inputs import input_chain_id
from workers.audit.recorded_input import read_trail
from workers.shell.spec import DirectCore, RoutedCore

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_MS = 500


async def _values(
    client_options: Mapping[str, Any], topic: str, partition: int, until_offset: int | None
) -> AsyncIterator[bytes]:
    """Committed values of topic[partition] from its beginning, up to `until_offset`
    (exclusive; None: its end now)."""
    consumer = AIOKafkaConsumer(
        **client_options, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        stop = end if until_offset is None else min(until_offset, end)
        if stop <= beginning:
            return
        consumer.seek(tp, beginning)
        while await consumer.position(tp) < stop:
            fetched = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
            for record in fetched.get(tp, []):
                if record.offset >= stop:
                    return
                if record.value is not None:
                    yield record.value
    finally:
        await consumer.stop()


async def restore_counting(
    client_options: Mapping[str, Any],
    counting: RoutedCore,
    topic: str,
    partition: int,
    first_offset: int,
) -> int:
    """Feed a fresh counting core its partition's records before `first_offset` (their
    decisions were published by the worker that processed them). Returns how many."""
    restored = 0
    async for value in _values(client_options, topic, partition, first_offset):
        counting.apply(value)
        restored += 1
    if restored:
        log.info("restored %s[%d] from %d routed record(s)", topic, partition, restored)
    return restored


async def _chain_records(
    client_options: Mapping[str, Any], audit_topic: str, audit_partitions: int, chain: str
) -> list[dict[str, Any]]:
    """Every committed record of `chain`, in the audit partition its key hashes to."""
    key = chain.encode()
    every = list(range(audit_partitions))
    audit_partition = DefaultPartitioner()(key, every, every)
    records = []
    async for value in _values(client_options, audit_topic, audit_partition, None):
        if b'"' + key + b'"' in value:
            record = orjson.loads(value)
            if record.get("chain") == chain:
                records.append(record)
    return records


async def recorded_offsets(
    client_options: Mapping[str, Any], *, audit_topic: str, audit_partitions: int, partition: int
) -> dict[str, int]:
    """The highest offset of each input topic's partition `partition` recorded in the
    forensic trail. With exactly-once processing a batch's audit records commit with all its
    other outputs, so a record at or below this offset was fully processed: a worker consuming
    it again (its offsets were not committed before a crash) must skip it."""
    highest: dict[str, int] = {}
    chain = input_chain_id(partition)
    for record in await _chain_records(client_options, audit_topic, audit_partitions, chain):
        source = record.get("source") or {}
        topic, offset = source.get("topic"), source.get("offset")
        if isinstance(topic, str) and isinstance(offset, int):
            highest[topic] = max(highest.get(topic, -1), offset)
    return highest


async def restore_direct(
    client_options: Mapping[str, Any],
    core: DirectCore,
    *,
    audit_topic: str,
    audit_partitions: int,
    partition: int,
) -> int:
    """Feed a fresh direct core (e.g. breakers) the input its partition processed before,
    from the forensic trail, each event as its topic's decider takes it. Returns how many."""
    chain = input_chain_id(partition)
    records = await _chain_records(client_options, audit_topic, audit_partitions, chain)
    restored = 0
    for entry in read_trail(records).inputs.get(partition, []):
        decide = core.decider(entry.topic)
        if decide is not None:
            decide(entry.event)
        restored += 1
    if restored:
        log.info("restored partition %d from %d trail event(s)", partition, restored)
    return restored
