"""Snapshots end to end (issue 12): a monthly budget restarted on day 20 restores its exact
spend from the latest snapshot, even once its routed history is gone, and the trail replays
to the same decisions across the restore.

The worker (production mode, a snapshot after every batch) counts twenty days of spend, stops,
and the `budget-spend` topic loses every record (what its 7-day retention does to a month).
Restarted, the worker counts the last ten days: the month's total and its thresholds come out
as if it had never stopped. Without the snapshot the restore would find nothing to replay and
count the last ten days only.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from schemas.types import rfc3339_ms
from tests.support.cli_scenario import (
    export_when_settled,
    jsonl,
    read_topic,
    scenario_env,
    team_budget_text,
)
from tests.support.worker_process import run_cli, running_worker
from topics.catalog import TopicCatalog

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR
VENDORS = ["openai", "anthropic", "mistral", "cohere"]  # the spend comes from every partition

POLICY = team_budget_text("research", 1000, [50, 80], period="monthly")


def spend(n: int) -> dict[str, Any]:
    """$10 every 8 hours from November 1st: $600 by day 20, $900 by day 30."""
    return {
        "event_id": f"spend-{n}",
        "ts": rfc3339_ms(T0_MS + n * 8 * HOUR),
        "vendor": VENDORS[n % 4],
        "tool": "chat",
        "status": "success",
        "duration_ms": 100,
        "cost_usd": "10",
        "team": "research",
    }


def tick(ms: int) -> dict[str, Any]:
    return {"type": "clock", "ts": rfc3339_ms(ms)}


def spent(env: dict[str, str]) -> str | None:
    result = run_cli(["budgets", "--json"], env, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    states = {state["budget_id"]: state for state in orjson.loads(result.stdout)}
    research = states.get("bud.team.research")
    return None if research is None else str(research["spent_usd"])


def wait_spent(env: dict[str, str], usd: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while (seen := spent(env)) != usd:
        assert time.monotonic() < deadline, f"spent {seen}, expected {usd}"
        time.sleep(1)


def partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(TopicCatalog().input_partitions)]


async def snapshot_names(bootstrap: str, topic: str) -> set[str]:
    """The names with a snapshot header (uncommitted ones too: the stopped worker's last
    transaction stays open until its successor takes its id over)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = partitions(topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        names: set[str] = set()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                names.update(r.key.decode() for r in records if r.key and b"#" not in r.key)
        return names
    finally:
        await consumer.stop()


async def delete_every_record(bootstrap: str, topic: str) -> None:
    """What retention does to records older than it: gone for every reader."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = partitions(topic)
        ends = await consumer.end_offsets(tps)
        await admin.delete_records({tp: RecordsToDelete(ends[tp]) for tp in tps})
    finally:
        await admin.close()
        await consumer.stop()


def test_a_monthly_budget_restarted_on_day_20_restores_its_exact_spend(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers,
        topic_prefix,
        tmp_path / "policies",
        {"budgets.yaml": POLICY},
        GUARDSTREAM_MODE="production",
        GUARDSTREAM_SNAPSHOT_EVERY="1",
        GUARDSTREAM_SNAPSHOT_EVERY_ROUTED="1",
        GUARDSTREAM_LOG_LEVEL="INFO",
    )
    first_days = jsonl([*(spend(n) for n in range(60)), tick(T0_MS + 20 * DAY)])
    last_days = jsonl([*(spend(n) for n in range(60, 90)), tick(T0_MS + 30 * DAY - HOUR)])

    with running_worker(env, tmp_path / "first") as process:
        published = run_cli(["publish", "-"], env, stdin=first_days)
        assert published.returncode == 0, published.stderr.decode()
        wait_spent(env, "600")
        assert process.alive()
    names = asyncio.run(snapshot_names(bootstrap_servers, f"{topic_prefix}snapshots"))
    assert {"budgets-p0", "input-p0"} <= names, names
    asyncio.run(delete_every_record(bootstrap_servers, f"{topic_prefix}budget-spend"))

    with running_worker(env, tmp_path / "second") as process:
        published = run_cli(["publish", "-"], env, stdin=last_days)
        assert published.returncode == 0, published.stderr.decode()
        wait_spent(env, "900")  # without the snapshot: 300
        assert process.alive()

    alerts = [a for a in read_topic(env, "alerts") if a["kind"] == "budget_threshold"]
    assert sorted(a["labels"]["threshold_percent"] for a in alerts) == ["50", "80"]

    # The second worker's decisions came from a snapshot and the tail; replayed from the
    # trail's first input they are the same.
    trail = export_when_settled(env, tmp_path / "trail.jsonl")
    replay = ["replay", "--source", "audit", "--input", str(trail), "--json", "--verify"]
    verified = run_cli(replay, env, timeout=180)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    summary = orjson.loads(verified.stdout)
    assert summary["mismatches"] == 0
    assert summary["recorded"] == summary["replayed"] >= 2  # at least the two alerts
