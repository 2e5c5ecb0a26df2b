"""Restore time of a budget counter: how long a worker that gets a `budget-spend` partition
takes to rebuild its ledgers from the partition (`workers.shell.recovery.restore_counting`).

A month of tool invocations (event times spread evenly over 30 days) is routed with the
repository's budget policy exactly as the router stage routes it (`route_batch`, one input
batch of 1,000 events at a time, then the partition's watermark) and written to a one-partition
topic; the counter is then restored from it. Restore reads and counts every routed record from
the beginning, so its time grows with the history a partition holds (issue 12: snapshots are
to bound it); then as the worker restores with a snapshot (`shell.snapshots`): the snapshot
taken a day before the end loaded, and the last day counted.

    python -m bench.restore                    # starts its own broker, 1,000,000 events
    python -m bench.restore --events 200000 --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from aiokafka import AIOKafkaProducer

from devstack.kafka import KafkaCluster
from schemas.codec import encode
from schemas.events import InvocationStatus, ToolInvocation
from schemas.types import rfc3339_ms
from schemas.watermark import SourceWatermark
from topics.admin import TopicAdmin
from topics.catalog import Cleanup, TopicSpec
from workers.budgets.counting import BudgetCounting
from workers.budgets.records import route_batch
from workers.kernels.key_cap import KeyCaps, StateKind
from workers.policies.budgets import BudgetPolicy, load_budget_policy
from workers.settings import Mode
from workers.shell.recovery import restore_counting
from workers.shell.snapshot import SnapshotCodec

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
T0_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
MONTH_MS = 30 * 86_400_000
BATCH = 1_000
SOURCE = ("bench.tool-invocations", 0)


def invocations(start: int, stop: int, count: int) -> list[ToolInvocation]:
    """Events `start` to `stop` of `count` spread over the month: made a batch at a time, so
    that 10M events do not have to fit in memory at once."""
    step = MONTH_MS // count
    teams = ("research", "support", "growth", "platform")
    return [
        ToolInvocation(
            event_id=f"e{n}",
            ts=rfc3339_ms(T0_MS + n * step),
            vendor="openai",
            tool="chat",
            model="gpt-4",
            status=InvocationStatus.SUCCESS,
            duration_ms=100,
            tokens_in=200,
            tokens_out=100,
            cost_usd="0.0021",
            team=teams[n % 4],
            user=f"user-{n % 50}",
        )
        for n in range(start, stop)
    ]


async def write_routed(bootstrap: str, topic: str, policy: BudgetPolicy, count: int) -> int:
    """Route `count` events as the router stage does and write them; how many records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, acks="all")
    await producer.start()
    written = 0
    try:
        for start in range(0, count, BATCH):
            batch = invocations(start, min(start + BATCH, count), count)
            routed = route_batch(policy, batch, source_topic=SOURCE[0], source_partition=SOURCE[1])
            for record in routed.records:
                await producer.send(topic, encode(record), key=record.key.encode(), partition=0)
            mark = SourceWatermark(
                source_topic=SOURCE[0], source_partition=SOURCE[1], ts_ms=routed.reached_ms
            )
            await producer.send(topic, encode(mark), key=b"watermark", partition=0)
            written += len(routed.records) + 1
        await producer.flush()
    finally:
        await producer.stop()
    return written


async def run(bootstrap: str, count: int) -> None:
    policy = load_budget_policy(CONFIGS / "budgets.yaml", Mode.PRODUCTION)
    topic = f"bench-restore-{uuid.uuid4().hex[:8]}.budget-spend"
    options = {"bootstrap_servers": bootstrap}
    async with TopicAdmin(options) as admin:
        spec = TopicSpec(topic, "budget key", "BudgetSpend", 1, Cleanup.DELETE, retention_ms=-1)
        await admin.ensure([spec])
    started = time.perf_counter()
    written = await write_routed(bootstrap, topic, policy, count)
    routed_s = time.perf_counter() - started
    print(f"routed {count:,} events into {written:,} records in {routed_s:.1f} s")
    full = BudgetCounting(policy, [SOURCE], KeyCaps().whole(StateKind.BUDGETS))
    started, cpu = time.perf_counter(), time.process_time()
    restored = await restore_counting(options, full, topic, 0, written)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ledgers = len(full.engine.ledgers)
    print(
        f"restore from the start: {restored:,} records in {elapsed:.1f} s ({cpu:.1f} s CPU), "
        f"{restored / elapsed:,.0f} records/s; {ledgers} ledgers"
    )
    await restore_from_snapshot(options, topic, policy, written, full)


async def restore_from_snapshot(
    options: dict[str, str], topic: str, policy: BudgetPolicy, written: int, full: BudgetCounting
) -> None:
    """Restore as the worker does with a snapshot taken a day before the end of the month:
    load it, then count the last day's records; the ledgers must equal the full restore's."""
    cut = written - written // 30
    before = BudgetCounting(policy, [SOURCE], KeyCaps().whole(StateKind.BUDGETS))
    await restore_counting(options, before, topic, 0, cut)
    codec = SnapshotCodec(policy)
    dumped = time.process_time()
    body = codec.dump(before)
    dumped = time.process_time() - dumped
    started, cpu = time.perf_counter(), time.process_time()
    loaded: BudgetCounting = codec.load(body)
    tail = await restore_counting(options, loaded, topic, 0, written, start=cut)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    exact = list(loaded.states()) == list(full.states())
    print(
        f"restore from a snapshot: {len(body):,} bytes (dumped in {dumped:.2f} s CPU), loaded "
        f"and {tail:,} tail records counted in {elapsed:.1f} s ({cpu:.1f} s CPU); "
        f"ledgers {'equal to' if exact else 'DIFFERENT from'} the full restore's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    args = parser.parse_args()
    with ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            bootstrap = stack.enter_context(KafkaCluster(n_brokers=1)).bootstrap_servers
        asyncio.run(run(bootstrap, args.events))


if __name__ == "__main__":
    main()
