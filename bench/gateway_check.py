"""Gateway `check()` latency (issue 13's targets), measured in one run against one Redis:

* `warm`: the in-process cache answers (no network); aim p99 < 50 µs;
* `cold`: the cache disabled, every check is the Lua round trip; aim within 1.5x of one GET;
* `GET`: a bare redis-py GET round trip on the same server, the yardstick.

Each sample is one call timed with `time.perf_counter_ns`; the projection holds one breaker and
one budget the call touches (written as the projector writes them). Not run in CI: on a shared
machine the figures are indicative, the ratios are what to read.

    python -m bench.gateway_check                  # starts its own redis-server
    python -m bench.gateway_check --url redis://127.0.0.1:6379/0 --samples 5000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import redis
from redis.asyncio import Redis as AsyncRedis

from devstack.redis import RedisServer
from schemas.codec import encode
from schemas.state import BreakerState, BudgetAction, BudgetPeriod, BudgetState, CircuitState
from schemas.types import from_epoch_ms
from workers.gateway import GatewayClient, GatewaySettings, Source
from workers.gateway.core import wall_clock_ms
from workers.projection.layout import RedisLayout, Surface
from workers.projection.store import ProjectionStore
from workers.projection.updates import update_of

VERSION = "0" * 64


def _records() -> list[tuple[Surface, str, bytes]]:
    now = from_epoch_ms(wall_clock_ms())
    breaker = BreakerState(
        key="openai/chat",
        state=CircuitState.CLOSED,
        since=now,
        policy_id="cb.vendor.default",
        policy_version=VERSION,
        updated_at=now,
    )
    budget = BudgetState(
        budget_id="bud.research",
        scope={"team": "research"},
        period=BudgetPeriod.DAILY,
        period_start=now,
        period_end=now,
        spent_usd=Decimal(1),
        utilization=0.1,
        projected_spend_usd=Decimal(2),
        action=BudgetAction.ALLOW,
        policy_version=VERSION,
        updated_at=now,
    )
    return [
        (Surface.BREAKER, "openai/chat", encode(breaker)),
        (Surface.BUDGET, "bud.research@day", encode(budget)),
    ]


async def _project(url: str, layout: RedisLayout) -> None:
    client = AsyncRedis.from_url(url)
    store = ProjectionStore(client, layout, ttl_ms=600_000)
    await store.reset({"epoch": "1"})
    updates = [
        update_of(layout, surface, "bench:0", offset, key.encode(), value)
        for offset, (surface, key, value) in enumerate(_records())
    ]
    await store.apply(updates, {"bench:0": len(updates)}, {"updated_at_ms": str(wall_clock_ms())})
    await client.aclose()


def _sample(action: Callable[[], object], samples: int) -> list[int]:
    for _ in range(min(samples, 500)):  # warm up connections, script cache, branch predictors
        action()
    timings = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        action()
        timings.append(time.perf_counter_ns() - start)
    return timings


def _summary(name: str, timings: list[int]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100)
    p50, p99 = cuts[49] / 1000, cuts[98] / 1000
    print(f"{name:<6} p50 {p50:9.1f} µs   p99 {p99:9.1f} µs   ({len(timings)} samples)")
    return p50, p99


def _checker(client: GatewayClient, expected: Source) -> Callable[[], object]:
    def check() -> object:
        return client.check("openai", "chat", team="research")

    source = client.check("openai", "chat", team="research").source
    assert source is expected, f"{source} answered, not {expected}"
    return check


def run(url: str, samples: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    layout = RedisLayout.for_topic_prefix(prefix)
    asyncio.run(_project(url, layout))
    plain = redis.Redis.from_url(url)
    plain.set(f"{layout.prefix}bench-get", "x")
    get_key = f"{layout.prefix}bench-get"

    def bare_get() -> object:
        return plain.get(get_key)

    get = _summary("GET", _sample(bare_get, samples))
    cold_settings = GatewaySettings(topic_prefix=prefix, cache_entries=0)
    with GatewayClient(url, cold_settings, socket_timeout_s=1.0) as cold_client:
        cold = _summary("cold", _sample(_checker(cold_client, Source.REDIS), samples))
    with GatewayClient(
        url, GatewaySettings(topic_prefix=prefix), socket_timeout_s=1.0
    ) as warm_client:
        deadline = time.monotonic() + 5
        while not warm_client.core.cache.active and time.monotonic() < deadline:
            time.sleep(0.01)
        warm_client.check("openai", "chat", team="research")
        warm = _summary("warm", _sample(_checker(warm_client, Source.CACHE), samples))
    print(f"cold / GET: p50 {cold[0] / get[0]:.2f}x  p99 {cold[1] / get[1]:.2f}x  (aim <= 1.5x)")
    print(f"warm / GET: p50 {warm[0] / get[0]:.3f}x  p99 {warm[1] / get[1]:.3f}x")
    print(f"warm p99 {warm[1]:.1f} µs (aim < 50 µs)")
    plain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing Redis (default: start a redis-server)")
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    if args.url:
        run(args.url, args.samples)
        return
    with RedisServer() as server:
        run(server.url, args.samples)


if __name__ == "__main__":
    main()
