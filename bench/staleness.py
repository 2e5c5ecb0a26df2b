"""Staleness of the live state: from the event that opens a breaker to the gateway's `check()`
denying the call (issue 13), under background traffic, in development (at least once) and
production (exactly once) mode.

A real broker, redis-server, `guardstream worker` and `guardstream project` run as they do in
production. Background calls (all successes, 40 vendor/tool keys) are published at --rate;
each trial then publishes five failing calls for a fresh vendor (the breaker opens on the
fifth), notes when the broker acknowledged the fifth, and asks a warm-cache gateway every
millisecond until it denies. Not a test: figures go into the README.

    python -m bench.staleness                      # 5,000 events/s, 20 trials, both modes
    python -m bench.staleness --rate 2000 --trials 10 --modes development
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition

from devstack.kafka import KafkaCluster
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.redis import RedisServer
from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog
from topics.settled import high_watermark, partition_reader
from workers.gateway import GatewayClient, GatewaySettings, report
from workers.metrics import BATCH_SECONDS, COMMIT_SECONDS, COMMIT_WAIT_SECONDS, CONSUMER_LAG
from workers.metrics_scrape import labels, scrape, total
from workers.projection.layout import Surface

BREAKERS = """
key: vendor/tool
breakers:
  fast:
    failure_threshold: 5
    minimum_number_of_calls: 5
    sliding_window_type: count
    sliding_window_size: 20
    wait_in_open_ms: 600000
    error_types: ["503"]
    fallback_action: use_cache
default: fast
"""
POLL_S = 0.001
TRIAL_TIMEOUT_S = 30.0


def _event(prefix: str, vendor: str, ok: bool) -> tuple[str, bytes, bytes]:
    built = report(
        vendor,
        "chat",
        status="success" if ok else "error",
        error_type=None if ok else "503",
        duration_ms=50,
        ts=datetime.now(UTC),
        topic_prefix=prefix,
    )
    return built.topic, built.key, built.value


async def background(bootstrap: str, prefix: str, rate: float, stop: asyncio.Event) -> int:
    """Successful calls over 40 keys at `rate` per second until `stop`; how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent, started = 0, time.monotonic()
    try:
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            for _ in range(min(due - sent, 500)):
                topic, key, value = _event(prefix, f"steady-{sent % 40}", ok=True)
                await producer.send(topic, value, key=key)
                sent += 1
            await asyncio.sleep(0.005)
    finally:
        await producer.stop()
    return sent


async def trials(
    bootstrap: str, prefix: str, gateway: GatewayClient, count: int, web_port: int
) -> list[float]:
    """Seconds from the breaker-opening event's acknowledgement to the first deny, per trial."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    staleness: list[float] = []
    try:
        for trial in range(count):
            vendor = f"failing-{trial}-{uuid.uuid4().hex[:6]}"
            for _ in range(5):
                topic, key, value = _event(prefix, vendor, ok=False)
                await producer.send_and_wait(topic, value, key=key)
            acknowledged = time.monotonic()
            while (verdict := gateway.check(vendor, "chat")).decision != "deny":
                if time.monotonic() - acknowledged > TRIAL_TIMEOUT_S:
                    held = gateway.redis.hgetall(
                        gateway.core.layout.state(Surface.BREAKER, f"{vendor}/chat")
                    )
                    raise RuntimeError(
                        f"{vendor}: not denied within {TRIAL_TIMEOUT_S} s; last verdict "
                        f"{verdict}; Redis holds {held}; breaker-state (end, stable end): "
                        f"{await _ends(bootstrap, prefix + 'breaker-state', 4)}; the worker's "
                        f"input lag: {total(scrape(web_port), CONSUMER_LAG):,.0f} records"
                    )
                await asyncio.sleep(POLL_S)
            staleness.append(time.monotonic() - acknowledged)
    finally:
        await producer.stop()
    return staleness


async def _ends(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """Partition -> (end offset, last stable offset): a transaction left open shows as a
    stable end behind the end, and read_committed readers stop there."""
    options = {"bootstrap_servers": bootstrap}
    ends: dict[int, tuple[int, int]] = {}
    for partition in range(partitions):
        tp = TopicPartition(topic, partition)
        async with partition_reader(options, tp, committed=True) as consumer:
            stable = int((await consumer.end_offsets([tp]))[tp])
        ends[partition] = (await high_watermark(options, tp), stable)
    return ends


async def measure(
    bootstrap: str, prefix: str, redis_url: str, rate: float, count: int, web_port: int
) -> tuple[list[float], int]:
    stop = asyncio.Event()
    traffic = asyncio.create_task(background(bootstrap, prefix, rate, stop))
    await asyncio.sleep(5)  # the background traffic settles
    settings = GatewaySettings(topic_prefix=prefix)
    with GatewayClient(redis_url, settings, socket_timeout_s=1.0) as gateway:
        measured = await trials(bootstrap, prefix, gateway, count, web_port)
    stop.set()
    return measured, await traffic


def run_mode(
    mode: str, cluster: KafkaCluster, redis_server: RedisServer, args: argparse.Namespace
) -> None:
    prefix = f"stale{uuid.uuid4().hex[:8]}."
    work = Path(tempfile.mkdtemp(prefix=f"guardstream-staleness-{mode}-"))
    (work / "breakers.yaml").write_text(BREAKERS)
    env = dict(
        os.environ,
        GUARDSTREAM_KAFKA_BOOTSTRAP=cluster.bootstrap_servers,
        GUARDSTREAM_REDIS_URL=redis_server.url,
        GUARDSTREAM_TOPIC_PREFIX=prefix,
        GUARDSTREAM_APP_ID=f"{prefix}worker",
        GUARDSTREAM_MODE=mode,
        GUARDSTREAM_POLICY_DIR=str(work / "breakers.yaml"),
        GUARDSTREAM_DATA_DIR=str(work / "data"),
    )
    asyncio.run(_create_topics(cluster.bootstrap_servers, TopicCatalog(prefix=prefix)))
    cli = [sys.executable, "-m", "workers.cli.main"]
    web_port = free_port()
    worker_argv = [*cli, "worker", "--web-port", str(web_port)]
    projector_argv = [*cli, "project", "--metrics-port", str(free_port())]
    worker = ManagedProcess("worker", worker_argv, work / "worker.log", env=env)
    projector = ManagedProcess("projector", projector_argv, work / "projector.log", env=env)
    worker.start()
    projector.start()
    try:
        time.sleep(15)  # the worker joins its group, the projector reads the empty topics
        measured, sent = asyncio.run(
            measure(
                cluster.bootstrap_servers,
                prefix,
                redis_server.url,
                args.rate,
                args.trials,
                web_port,
            )
        )
        timings = _timings(scrape(web_port))
    finally:
        projector.stop()
        worker.stop()
    cuts = statistics.quantiles([s * 1000 for s in measured], n=100, method="inclusive")
    print(
        f"{mode:<12} event -> check() denies: p50 {cuts[49]:7.0f} ms  p99 {cuts[98]:7.0f} ms  "
        f"max {max(measured) * 1000:7.0f} ms  ({len(measured)} trials, "
        f"{sent:,} background events; logs {work})"
    )
    print(f"{'':<12} worker: {timings}")


def _timings(samples: dict[str, float]) -> str:
    """p50 / p99 / max bucket of the worker's batch, commit and commit-wait histograms."""
    parts = []
    for name in (BATCH_SECONDS, COMMIT_SECONDS, COMMIT_WAIT_SECONDS):
        buckets = sorted(
            (float(labels(key)["le"]), value)
            for key, value in samples.items()
            if key.startswith(f"{name}_bucket{{")
        )
        count = buckets[-1][1] if buckets else 0
        if not count:
            continue
        quantile = {
            q: next(bound for bound, seen in buckets if seen >= q * count) for q in (0.5, 0.99)
        }
        slowest = next(bound for bound, seen in buckets if seen >= count)
        short = name.removeprefix("guardstream_").removesuffix("_seconds")
        parts.append(
            f"{short} p50 <= {quantile[0.5] * 1000:g} ms, p99 <= {quantile[0.99] * 1000:g} ms, "
            f"max <= {slowest * 1000:g} ms ({count:,.0f})"
        )
    return "; ".join(parts)


async def _create_topics(bootstrap: str, catalog: TopicCatalog) -> None:
    async with TopicAdmin({"bootstrap_servers": bootstrap}) as admin:
        await admin.ensure(catalog.specs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="background events/s")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--modes", nargs="+", default=["development", "production"])
    args = parser.parse_args()
    with ExitStack() as stack:
        cluster = stack.enter_context(KafkaCluster(n_brokers=1))
        redis_server = stack.enter_context(RedisServer())
        for mode in args.modes:
            run_mode(mode, cluster, redis_server, args)


if __name__ == "__main__":
    main()
