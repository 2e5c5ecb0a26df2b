"""Ingest throughput: guardstream's ingest stage vs raw aiokafka consume + orjson decode.

Both read the same N records from the same topic in the same run, timed from the first record
received to the last, so broker start-up and group rebalances are not counted. The ratio is
the figure to compare across machines; absolute rates move with load on a shared machine.

    python -m bench.ingest                 # starts its own broker, 200k events, 4 partitions
    python -m bench.ingest --events 50000 --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devstack.kafka import KafkaCluster
from devstack.ports import free_port
from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog, TopicName
from workers.metrics import LAST_BATCH_TIME
from workers.metrics_scrape import scrape, total
from workers.simulate.scenario import Chaos, Scenario
from workers.simulate.traffic import TrafficGenerator


@dataclass
class Rate:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


async def produce(bootstrap: str, catalog: TopicCatalog, count: int) -> int:
    generator = TrafficGenerator(
        Scenario(chaos=Chaos.none(), cost_event_share=0, latency_event_share=0), seed=1
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    size = 0
    try:
        pending = []
        for i in range(count):
            record = generator.next_record(elapsed_s=0.0, now_ms=1_795_000_000_000 + i)
            size += len(record.value)
            pending.append(
                await producer.send(
                    catalog.name(TopicName.TOOL_INVOCATIONS), record.value, key=record.key
                )
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return size // count


async def raw_consume(bootstrap: str, topic: str, partitions: int, count: int) -> Rate:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen, started = 0, None
    loads = orjson.loads
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if started is None and batches:
                started = time.perf_counter()
            for records in batches.values():
                for record in records:
                    loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    assert started is not None
    return Rate(seen, time.perf_counter() - started)


async def guardstream_ingest(
    bootstrap: str, prefix: str, count: int, timeout_s: float, policy: str
) -> Rate:
    """`guardstream worker`, run as users run it: ingest + breakers under `policy`."""
    command = ["-m", "workers.cli.main", "worker", "--policy", policy, "--web-port"]
    return await timed_worker(command, bootstrap, prefix, "guardstream", count, timeout_s)


async def plain_faust(bootstrap: str, prefix: str, count: int, timeout_s: float) -> Rate:
    """The same job as a stock Faust agent (bench/plain_faust.py)."""
    command = ["-m", "bench.plain_faust", "--web-port"]
    return await timed_worker(command, bootstrap, prefix, "plain", count, timeout_s)


async def timed_worker(
    command: list[str], bootstrap: str, prefix: str, group: str, count: int, timeout_s: float
) -> Rate:
    """Run a worker process; time its first to last record.

    The start is when /metrics first shows a record (polled every 10 ms); the end is the
    worker's own `guardstream_ingest_last_batch_unixtime` once all N were counted, so slow
    polling after the start costs the worker nothing and adds no error.
    """
    web_port = free_port()
    env = dict(
        os.environ,
        GUARDSTREAM_KAFKA_BOOTSTRAP=bootstrap,
        GUARDSTREAM_TOPIC_PREFIX=prefix,
        GUARDSTREAM_APP_ID=f"{prefix}{group}",
        GUARDSTREAM_WEB_PORT=str(web_port),
        GUARDSTREAM_DATA_DIR=f"/tmp/guardstream-bench-{uuid.uuid4().hex[:8]}",
        GUARDSTREAM_LOG_LEVEL="WARNING",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        str(web_port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        started: float | None = None
        seen_at_start = 0
        while started is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker saw no record within {timeout_s}s")
            if process.returncode is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
            seen_at_start = _records_seen(await asyncio.to_thread(scrape, web_port))
            if seen_at_start > 0:
                started = time.time()
            await asyncio.sleep(_FAST_POLL_S)
        while True:
            samples = await asyncio.to_thread(scrape, web_port)
            if _records_seen(samples) >= count:
                # The batches counted before `started` were processed before it: leave them out.
                return Rate(count - seen_at_start, samples[LAST_BATCH_TIME] - started)
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not see {count} records within {timeout_s}s")
            await asyncio.sleep(_SLOW_POLL_S)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=30)


_FAST_POLL_S = 0.01
_SLOW_POLL_S = 0.5
_SEEN_METRICS = (
    "guardstream_events_accepted_total",
    "guardstream_events_duplicate_total",
    "guardstream_events_dead_lettered_total",
)


def _records_seen(samples: dict[str, float]) -> int:
    return int(sum(total(samples, metric) for metric in _SEEN_METRICS))


async def main_async(args: argparse.Namespace) -> None:
    async with AsyncExitStack():
        with ExitStack() as stack:
            bootstrap = args.bootstrap
            if bootstrap is None:
                cluster = stack.enter_context(KafkaCluster(n_brokers=1))
                bootstrap = cluster.bootstrap_servers
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            catalog = TopicCatalog(prefix=prefix, input_partitions=args.partitions)
            async with TopicAdmin({"bootstrap_servers": bootstrap}) as admin:
                await admin.ensure(catalog.specs())
            print(f"producing {args.events} events to {args.partitions} partitions ...", flush=True)
            avg = await produce(bootstrap, catalog, args.events)
            topic = catalog.name(TopicName.TOOL_INVOCATIONS)
            raw = await raw_consume(bootstrap, topic, args.partitions, args.events)
            ingest = await guardstream_ingest(
                bootstrap, prefix, args.events, args.timeout, args.policy
            )
            plain = None
            if not args.skip_plain_faust:
                plain = await plain_faust(bootstrap, prefix, args.events, args.timeout)
            ratio = ingest.per_second / raw.per_second
            print(f"events: {args.events} x ~{avg} B, partitions: {args.partitions}")
            print(f"raw aiokafka getmany + orjson : {raw.per_second:>10,.0f} events/s")
            print(
                f"guardstream worker            : {ingest.per_second:>10,.0f} events/s "
                f"({args.policy})"
            )
            print(f"ratio (guardstream / raw)     : {ratio:.2f}x")
            if plain is not None:
                print(f"plain Faust agent + table     : {plain.per_second:>10,.0f} events/s")
                print(f"ratio (plain Faust / raw)     : {plain.per_second / raw.per_second:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", default=None, help="Use this broker instead of starting one")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--policy", default="configs", help="Breaker policy the worker runs (default: configs)"
    )
    parser.add_argument(
        "--skip-plain-faust", action="store_true", help="Leave out the stock Faust baseline"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
