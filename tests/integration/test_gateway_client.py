"""The gateway clients against a real redis-server, with state written as the projector writes
it (ProjectionStore.apply of real state records): breaker open, budget halt, rate limit,
dependency nodes unavailable or degraded, data classes, the cache (no round trip when warm,
invalidated by the change notifications) and Redis outages under both failure modes, for the
sync and the async client."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis as AsyncRedis

from devstack.redis import RedisServer
from schemas.codec import encode
from schemas.state import (
    Availability,
    BreakerState,
    BudgetAction,
    BudgetPeriod,
    BudgetState,
    CircuitState,
    DependencyState,
)
from schemas.types import from_epoch_ms
from tests.support.policy_files import ALPHA_SOLVER_SEEDS
from workers.gateway import (
    AsyncGatewayClient,
    Decision,
    FailureMode,
    GatewayClient,
    GatewaySettings,
    ReasonKind,
    Source,
)
from workers.gateway.core import wall_clock_ms
from workers.policies.classification import load_classification_policy
from workers.policies.vendor_registry import load_vendor_registry
from workers.projection.layout import RedisLayout, Surface
from workers.projection.store import ProjectionStore
from workers.projection.updates import update_of

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
HANDLING = load_classification_policy(ALPHA_SOLVER_SEEDS / "data_classification.yaml").data_handling
REGISTRY = load_vendor_registry(ROOT / "examples" / "policies" / "vendors.yaml").groups
V1, V2 = "1" * 64, "2" * 64
BOUND_S = 5.0
"""How long a notification may take to reach the cache before the test fails (a bound, polled:
on a loaded machine it is usually milliseconds)."""


class Projection:
    """Writes state records into Redis exactly as the projector does."""

    def __init__(self, url: str) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.layout = RedisLayout.for_topic_prefix(self.prefix)
        self.url = url
        self.offset = 0

    def write(self, surface: Surface, key: str, record: BaseModel) -> None:
        asyncio.run(self._write(surface, key, record))

    async def _write(self, surface: Surface, key: str, record: BaseModel) -> None:
        client = AsyncRedis.from_url(self.url)
        store = ProjectionStore(client, self.layout, ttl_ms=0)
        if not await store.held():
            await store.reset({"epoch": "1"})
        self.offset += 1
        update = update_of(
            self.layout, surface, f"{surface}:0", self.offset, key.encode(), encode(record)
        )
        meta = {"updated_at_ms": str(wall_clock_ms())}
        await store.apply([update], {f"{surface}:0": self.offset + 1}, meta)
        await client.aclose()

    def settings(self, **overrides: Any) -> GatewaySettings:
        return GatewaySettings(topic_prefix=self.prefix, **overrides)


def when(ms: int) -> datetime:
    return from_epoch_ms(ms)


def breaker(key: str, state: CircuitState, retry_in_ms: int = 30_000) -> BreakerState:
    now = wall_clock_ms()
    return BreakerState(
        key=key,
        state=state,
        since=when(now),
        retry_at=when(now + retry_in_ms) if state is CircuitState.OPEN else None,
        fallback_action="use_cache",
        reason="failure_rate 0.62 >= 0.50",
        policy_id="cb.vendor.default",
        policy_version=V1,
        updated_at=when(now),
    )


def budget(scope: dict[str, str], action: BudgetAction, **fields: Any) -> tuple[str, BudgetState]:
    now = wall_clock_ms()
    state = BudgetState(
        budget_id="bud.research",
        scope=scope,
        period=BudgetPeriod.DAILY,
        period_start=when(now - 3_600_000),
        period_end=when(now + 3_600_000),
        spent_usd=Decimal("10"),
        utilization=0.5,
        projected_spend_usd=Decimal("20"),
        action=action,
        policy_version=V2,
        updated_at=when(now),
        **fields,
    )
    return "bud.research@2024-01-01", state


def dependency(subject: str, availability: Availability) -> DependencyState:
    """The cascade's record for the node guarding `subject`, down through dep.openai."""
    cause = [] if availability is Availability.AVAILABLE else ["dep.chat", "dep.openai"]
    reason = "dep.openai is down: dep.chat -> dep.openai" if cause else "available"
    return DependencyState(
        node="dep.chat",
        subject=subject,
        availability=availability,
        previous=Availability.AVAILABLE,
        cause=cause,
        reason=reason,
        criticality="essential",
        trigger="vendor:openai down",
        breaker_key="openai",
        policy_version=V2,
        updated_at=when(wall_clock_ms()),
    )


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.01)


@pytest.fixture
def projection(redis_url: str) -> Projection:
    return Projection(redis_url)


@pytest.fixture
def gateway(projection: Projection) -> Iterator[GatewayClient]:
    with GatewayClient(projection.url, projection.settings()) as client:
        eventually(lambda: client.core.cache.active)
        yield client


def test_an_open_breaker_denies_with_its_retry_time(
    projection: Projection, gateway: GatewayClient
) -> None:
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.OPEN))
    verdict = gateway.check("openai", "chat", team="research")
    assert verdict.decision is Decision.DENY
    assert verdict.source is Source.REDIS
    (reason,) = verdict.reasons
    assert (reason.kind, reason.key) == (ReasonKind.BREAKER_OPEN, "openai")
    assert reason.retry_after_ms is not None
    assert 0 < reason.retry_after_ms <= 30_000
    assert verdict.fallback_action == "use_cache"
    assert verdict.policy_versions == (V1,)
    assert verdict.stale_ms is not None
    assert verdict.stale_ms >= 0
    assert gateway.check("anthropic", "chat").decision is Decision.ALLOW


def test_a_halted_budget_denies_the_calls_in_its_scope_only(
    projection: Projection, gateway: GatewayClient
) -> None:
    key, state = budget({"team": "research"}, BudgetAction.HALT, decided_by="hard_limit")
    projection.write(Surface.BUDGET, key, state)
    verdict = gateway.check("openai", "chat", team="research", user="ana")
    assert verdict.decision is Decision.DENY
    assert [(r.kind, r.key) for r in verdict.reasons] == [(ReasonKind.BUDGET_HALT, "bud.research")]
    assert gateway.check("openai", "chat", team="search").decision is Decision.ALLOW


def test_a_rate_limit_throttles_with_its_retry_after(
    projection: Projection, gateway: GatewayClient
) -> None:
    reset_ms = wall_clock_ms() + 20_000
    key, state = budget(
        {},
        BudgetAction.THROTTLE,
        decided_by="rate_limit:requests",
        requests_remaining=0,
        request_rate_limit=10,
        rate_limit_reset_at=when(reset_ms),
    )
    projection.write(Surface.BUDGET, key, state)
    verdict = gateway.check("openai", "chat", team="anyone")
    assert verdict.decision is Decision.THROTTLE
    assert [r.kind for r in verdict.reasons] == [ReasonKind.RATE_LIMIT]
    assert verdict.retry_after_ms is not None
    assert 0 < verdict.retry_after_ms <= 20_000


def test_a_projected_dependency_node_denies_its_tool_and_names_the_cause(
    projection: Projection, gateway: GatewayClient
) -> None:
    projection.write(
        Surface.DEPENDENCY, "tool:chat", dependency("tool:chat", Availability.UNAVAILABLE)
    )
    verdict = gateway.check("openai", "chat", team="research")
    assert verdict.decision is Decision.DENY
    (reason,) = verdict.reasons
    assert (reason.kind, reason.key) == (ReasonKind.DEPENDENCY_UNAVAILABLE, "tool:chat")
    assert "dep.openai is down: dep.chat -> dep.openai" in reason.message
    assert verdict.policy_versions == (V2,)
    assert gateway.check("openai", "embed").decision is Decision.ALLOW
    projection.write(
        Surface.DEPENDENCY, "vendor:mistral", dependency("vendor:mistral", Availability.DEGRADED)
    )
    degraded = gateway.check("mistral", "embed")
    assert degraded.decision is Decision.ALLOW
    assert [(r.kind, r.key) for r in degraded.reasons] == [
        (ReasonKind.DEPENDENCY_DEGRADED, "vendor:mistral")
    ]


def test_a_dependency_change_evicts_the_cached_calls_that_read_it(
    projection: Projection, gateway: GatewayClient
) -> None:
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.CLOSED))
    # Eventually: a check that raced the breaker's own notification is not cached.
    eventually(lambda: gateway.check("openai", "chat").source is Source.CACHE)
    eventually(lambda: gateway.check("anthropic", "embed").source is Source.CACHE)
    # The node's hash did not exist when the entry was read: its creation evicts the entry.
    # Within BOUND_S, well inside the 30 s cache TTL, only that eviction can show the deny.
    projection.write(
        Surface.DEPENDENCY, "tool:chat", dependency("tool:chat", Availability.UNAVAILABLE)
    )
    eventually(lambda: gateway.check("openai", "chat").decision is Decision.DENY)
    assert gateway.check("anthropic", "embed").source is Source.CACHE  # it read other hashes
    eventually(lambda: gateway.check("openai", "chat").source is Source.CACHE)
    projection.write(
        Surface.DEPENDENCY, "tool:chat", dependency("tool:chat", Availability.AVAILABLE)
    )
    eventually(lambda: gateway.check("openai", "chat").reasons == ())
    assert gateway.check("openai", "chat").decision is Decision.ALLOW


def test_phi_to_a_vendor_that_is_not_hipaa_compliant_is_denied(projection: Projection) -> None:
    projection.write(Surface.BREAKER, "other", breaker("other", CircuitState.CLOSED))
    settings = projection.settings(handling=HANDLING, registry=REGISTRY)
    with GatewayClient(projection.url, settings) as client:
        denied = client.check("openai", "chat", data_classes=["phi"])
        assert denied.decision is Decision.DENY
        assert [(r.kind, r.key) for r in denied.reasons] == [(ReasonKind.DATA_CLASS, "class.phi")]
        allowed = client.check("azure-openai", "chat", data_classes=["phi"])
        assert allowed.decision is Decision.ALLOW
        assert allowed.encryption_required
        assert "baa_required" in allowed.restrictions


def test_the_cache_answers_without_redis_and_follows_changes(
    projection: Projection, gateway: GatewayClient
) -> None:
    projection.write(Surface.BREAKER, "openai/chat", breaker("openai/chat", CircuitState.CLOSED))
    assert gateway.check("openai", "chat", team="research").source is Source.REDIS
    # A first check that raced the write's own notification is, by the cache's rule, not stored.
    eventually(lambda: gateway.check("openai", "chat", team="research").source is Source.CACHE)
    trips = gateway.core.round_trips
    for _ in range(50):
        verdict = gateway.check("openai", "chat", team="research")
        assert verdict.source is Source.CACHE
        assert verdict.decision is Decision.ALLOW
    assert gateway.core.round_trips == trips
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.OPEN))
    eventually(lambda: gateway.check("openai", "chat", team="research").decision is Decision.DENY)
    key, state = budget({"team": "research"}, BudgetAction.HALT)
    projection.write(Surface.BUDGET, key, state)  # a budget never seen: every entry goes
    eventually(
        lambda: (
            [r.kind for r in gateway.check("openai", "chat", team="research").reasons]
            == [ReasonKind.BREAKER_OPEN, ReasonKind.BUDGET_HALT]
        )
    )


def test_the_cache_is_off_when_disabled(projection: Projection) -> None:
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.CLOSED))
    with GatewayClient(projection.url, projection.settings(cache_entries=0)) as client:
        sources = {client.check("openai", "chat").source for _ in range(5)}
        assert sources == {Source.REDIS}
        assert client.core.round_trips == 5


@pytest.mark.parametrize(
    ("mode", "decision"),
    [(FailureMode.FAIL_OPEN, Decision.ALLOW), (FailureMode.FAIL_CLOSED, Decision.DENY)],
)
def test_a_stopped_redis_gives_the_failure_mode_with_the_last_known_state(
    mode: FailureMode, decision: Decision
) -> None:
    with RedisServer() as server:
        projection = Projection(server.url)
        key, state = budget({"team": "research"}, BudgetAction.THROTTLE, decided_by="x:80")
        projection.write(Surface.BUDGET, key, state)
        settings = projection.settings(failure_mode=mode, retry_interval_ms=0)
        with GatewayClient(server.url, settings) as client:
            eventually(lambda: client.core.cache.active)
            assert client.check("openai", "chat", team="research").decision is Decision.THROTTLE
            server.shutdown()
            eventually(lambda: not client.core.cache.active)
            known = client.check("openai", "chat", team="research")
            unknown = client.check("openai", "chat", team="search")
            assert known.source is Source.LAST_KNOWN
            assert known.stale_ms is not None
            expected = Decision.THROTTLE if mode is FailureMode.FAIL_OPEN else Decision.DENY
            assert known.decision is expected
            assert next(r.kind for r in known.reasons) is ReasonKind.REDIS_UNAVAILABLE
            assert (unknown.source, unknown.decision) == (Source.NONE, decision)
            server.start()  # empty: until the projector rebuilds, there is no projection
            assert client.check("openai", "chat", team="research").source is Source.LAST_KNOWN
            projection.write(Surface.BUDGET, key, state)
            eventually(
                lambda: client.check("openai", "chat", team="research").source is Source.CACHE
            )


def test_the_async_client_checks_caches_and_fails_over() -> None:
    with RedisServer() as server:
        projection = Projection(server.url)
        projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.OPEN))
        asyncio.run(_async_scenario(server, projection))


async def _async_scenario(server: RedisServer, projection: Projection) -> None:
    settings = projection.settings(failure_mode=FailureMode.FAIL_CLOSED, retry_interval_ms=0)
    async with AsyncGatewayClient(server.url, settings) as client:
        await _until(lambda: client.core.cache.active)
        first = await client.check("openai", "chat")
        second = await client.check("openai", "chat")
        assert (first.decision, first.source) == (Decision.DENY, Source.REDIS)
        assert (second.decision, second.source) == (Decision.DENY, Source.CACHE)
        await asyncio.to_thread(
            projection.write, Surface.BREAKER, "openai", breaker("openai", CircuitState.HALF_OPEN)
        )
        await _until_async(client, lambda v: v.decision is Decision.ALLOW)
        server.shutdown()
        await _until(lambda: not client.core.cache.active)
        down = await client.check("openai", "chat")
        assert (down.decision, down.source) == (Decision.DENY, Source.LAST_KNOWN)


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.01)


async def _until_async(client: AsyncGatewayClient, condition: Callable[[Any], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition(await client.check("openai", "chat")):
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.01)


def test_a_redis_that_lost_its_scripts_is_answered_after_loading_them_again(
    projection: Projection, redis_server: RedisServer
) -> None:
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.OPEN))
    with GatewayClient(projection.url, projection.settings(cache_entries=0)) as client:
        assert client.check("openai", "chat").decision is Decision.DENY
        redis_server.client().script_flush()
        verdict = client.check("openai", "chat")
        assert (verdict.decision, verdict.source) == (Decision.DENY, Source.REDIS)
        asyncio.run(_async_after_script_flush(projection, redis_server))


async def _async_after_script_flush(projection: Projection, redis_server: RedisServer) -> None:
    redis_server.client().script_flush()
    async with AsyncGatewayClient(projection.url, projection.settings(cache_entries=0)) as client:
        verdict = await client.check("openai", "chat")
        assert (verdict.decision, verdict.source) == (Decision.DENY, Source.REDIS)


def test_a_reply_that_came_too_late_is_never_read_as_the_next_calls(
    projection: Projection, redis_server: RedisServer
) -> None:
    """A check that timed out leaves its reply on the wire. The raw round trip drops the
    connection (and the pool would refuse one holding unread data), so the next check (another
    vendor, breaker closed) reads its own reply, not the open one's."""
    projection.write(Surface.BREAKER, "openai", breaker("openai", CircuitState.OPEN))
    projection.write(Surface.BREAKER, "mistral", breaker("mistral", CircuitState.CLOSED))
    settings = projection.settings(cache_entries=0, retry_interval_ms=0)
    with GatewayClient(projection.url, settings) as client:
        assert client.check("openai", "chat").decision is Decision.DENY  # connection pooled
        pid = redis_server.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            late = client.check("openai", "chat")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert late.source is Source.LAST_KNOWN  # the 50 ms socket timeout answered
        time.sleep(0.2)  # the late reply has reached the (dropped) socket by now
        for _ in range(5):
            verdict = client.check("mistral", "chat")
            assert (verdict.decision, verdict.source) == (Decision.ALLOW, Source.REDIS)
