"""Workers of one app recording their policies (workers.audit.policy_writer) against a real
broker: starting together they write each change once, into one unforked chain."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog, TopicName
from workers.audit.policy_trail import POLICY_CHAIN, POLICY_CHANGED
from workers.audit.policy_writer import record_policy_changes
from workers.audit.verify import ChainVerifier
from workers.masking.masker import default_masker
from workers.policies.policy_set import PolicySet, load_policies
from workers.settings import Mode

BUDGETS = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: %s
"""


async def test_workers_starting_together_record_each_change_once(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    catalog = TopicCatalog(prefix=topic_prefix)
    options = {"bootstrap_servers": bootstrap_servers}
    async with TopicAdmin(options) as admin:
        await admin.ensure(catalog.specs())
    first = policies_with_limit(tmp_path / "first", "300")

    async def start_worker(policies: PolicySet) -> int:
        return await record_policy_changes(
            options,
            app_id=f"{topic_prefix}worker",
            audit_topic=catalog.name(TopicName.AUDIT),
            audit_partitions=catalog.spec(TopicName.AUDIT).partitions,
            policies=policies,
            mode=Mode.PRODUCTION,
            masker=default_masker(),
            audit_policy=policies.audit,
        )

    # Three workers start at once: one writes the seven kinds, the others find them written
    # or are fenced while writing (and commit nothing).
    written = await asyncio.gather(*(start_worker(first) for _ in range(3)))
    records = await policy_chain(options, catalog)
    changed = [r for r in records if r["event_type"] == POLICY_CHANGED]
    assert sorted(r["payload"]["kind"] for r in changed) == sorted(
        ["breakers", "budgets", "slos", "classification", "audit", "dependencies", "vendors"]
    )
    assert sum(written) == len(records)
    assert [r["seq"] for r in records] == list(range(len(records)))  # no fork, no repeat

    assert await start_worker(first) == 0  # a restart with the same policies
    second = policies_with_limit(tmp_path / "second", "100")
    assert await start_worker(second) == 1
    records = await policy_chain(options, catalog)
    newest = records[-1]["payload"]
    assert newest["kind"] == "budgets"
    assert newest["previous_version"] == first.budgets.version
    assert newest["changes"] == ["changed budgets.bud.team.research"]
    verifier = ChainVerifier()
    for offset, record in enumerate(records):
        verifier.feed_document(record, (0, offset))
    assert verifier.report().ok


def policies_with_limit(directory: Path, limit: str) -> PolicySet:
    directory.mkdir()
    (directory / "budgets.yaml").write_text(BUDGETS % limit)
    return load_policies(directory, Mode.PRODUCTION)


async def policy_chain(options: dict[str, Any], catalog: TopicCatalog) -> list[dict[str, Any]]:
    """The committed records of the `policy` chain, in log order."""
    consumer = AIOKafkaConsumer(
        **options, group_id=None, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = catalog.name(TopicName.AUDIT)
        count = catalog.spec(TopicName.AUDIT).partitions
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[dict[str, Any]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            records += [
                orjson.loads(message.value)
                for batch in batches.values()
                for message in batch
                if message.key == POLICY_CHAIN.encode() and message.value is not None
            ]
        return records
    finally:
        await consumer.stop()
