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
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition

from topics.keys import key_partition
from topics.settled import partition_reader, records_between, settled_end
from workers.audit.inputs import input_chain_id
from workers.audit.recorded_input import RecordedInput, read_trail
from workers.shell.snapshots import Snapshot
from workers.shell.spec import DirectCore, RoutedCore

log = logging.getLogger(__name__)


async def _values(
    client_options: Mapping[str, Any],
    topic: str,
    partition: int,
    until: int | bytes,
    start: int = 0,
) -> AsyncIterator[bytes]:
    """Committed values of topic[partition] from offset `start` (or its beginning, if later),
    up to the offset `until` (exclusive), or, `until` a key, up to where every committed
    record with that key is visible (`topics.settled`)."""
    tp = TopicPartition(topic, partition)
    async with partition_reader(client_options, tp) as consumer:
        beginning = max(start, (await consumer.beginning_offsets([tp]))[tp])
        if isinstance(until, bytes):
            stop = await settled_end(client_options, consumer, tp, until)
        else:  # consumed under read_committed already: stable up to there
            stop = min(until, (await consumer.end_offsets([tp]))[tp])
        async for record in records_between(consumer, tp, beginning, stop):
            if record.value is not None:
                yield record.value


async def restore_counting(
    client_options: Mapping[str, Any],
    counting: RoutedCore,
    topic: str,
    partition: int,
    first_offset: int,
    *,
    start: int = 0,
) -> int:
    """Feed a counting core its partition's records from `start` (a fresh core: 0; one
    loaded from a snapshot: the snapshot's next offset) up to `first_offset` (their decisions
    were published by the worker that processed them). Returns how many."""
    restored = 0
    async for value in _values(client_options, topic, partition, first_offset, start):
        counting.apply(value)
        restored += 1
    if restored:
        log.info("restored %s[%d] from %d routed record(s)", topic, partition, restored)
    return restored


async def _chain_records(
    client_options: Mapping[str, Any],
    audit_topic: str,
    audit_partitions: int,
    chain: str,
    start: int = 0,
) -> list[dict[str, Any]]:
    """Every committed record of `chain` from offset `start` of the audit partition its key
    hashes to."""
    key = chain.encode()
    audit_partition = key_partition(key, audit_partitions)
    records = []
    async for value in _values(client_options, audit_topic, audit_partition, key, start):
        if b'"' + key + b'"' in value:
            record = orjson.loads(value)
            if record.get("chain") == chain:
                records.append(record)
    return records


@dataclass(frozen=True, slots=True)
class PartitionTrail:
    """What the forensic trail (and the latest snapshot) hold of one input partition when a
    worker takes it over."""

    partition: int
    recorded: dict[str, int]
    """Input topic -> the highest offset of its partition processed. With exactly-once
    processing a batch's audit records (and snapshot) commit with all its other outputs, so a
    record at or below it was fully processed: a worker consuming it again (its offsets were
    not committed before a crash) must skip it."""
    inputs: list[RecordedInput]
    """The input events processed after the snapshot (all of them without one), in
    processing order."""
    cores: dict[str, Any] = field(default_factory=dict)
    """Kernel name -> its core of the partition as the snapshot holds it."""


async def read_partition_trail(
    client_options: Mapping[str, Any],
    *,
    audit_topic: str,
    audit_partitions: int,
    partition: int,
    snapshot: Snapshot | None = None,
) -> PartitionTrail:
    """The `input-p<partition>` chain, read once per takeover: before the new owner sends
    anything for the partition, so that its own open transaction is never among what the
    read waits for (`topics.settled`). With a snapshot, only what came after it: from the
    audit offset it names, the inputs above the offsets it had processed."""
    position = snapshot.position if snapshot is not None else {}
    done = {str(topic): int(offset) for topic, offset in position.get("offsets", {}).items()}
    chain = input_chain_id(partition)
    records = [
        record
        for record in await _chain_records(
            client_options, audit_topic, audit_partitions, chain, int(position.get("audit_from", 0))
        )
        if _after(record, done)
    ]
    recorded = dict(done)
    for record in records:
        source = _source_offset(record)
        if source is not None:
            topic, offset = source
            recorded[topic] = max(recorded.get(topic, -1), offset)
    inputs = read_trail(records).inputs.get(partition, [])
    cores = snapshot.state if snapshot is not None and isinstance(snapshot.state, dict) else {}
    return PartitionTrail(partition, recorded, inputs, cores)


def _source_offset(record: Mapping[str, Any]) -> tuple[str, int] | None:
    """The input topic and offset an input record names (None: it names none)."""
    source = record.get("source") or {}
    topic, offset = source.get("topic"), source.get("offset")
    return (topic, offset) if isinstance(topic, str) and isinstance(offset, int) else None


def _after(record: Mapping[str, Any], done: Mapping[str, int]) -> bool:
    """Whether an input record names an offset past what the snapshot had processed."""
    source = _source_offset(record)
    return source is None or source[1] > done.get(source[0], -1)


def restore_direct(core: DirectCore, trail: PartitionTrail) -> int:
    """Feed a fresh direct core (e.g. breakers) the input its partition processed before,
    each event as its topic's decider takes it. Returns how many."""
    for entry in trail.inputs:
        decide = core.decider(entry.topic)
        if decide is not None:
            decide(entry.event)
    if trail.inputs:
        log.info("restored partition %d from %d trail event(s)", trail.partition, len(trail.inputs))
    return len(trail.inputs)
