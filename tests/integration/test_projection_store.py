"""The projection's Lua script against a real redis-server (workers.projection.store):
atomic batches, never backwards whatever the interleaving and retries, a change notification
per hash, and a refusal to write once Redis has lost the projection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from workers.projection.layout import RedisLayout, Surface
from workers.projection.store import ProjectionLost, ProjectionStore
from workers.projection.updates import Update, is_newer, update_of

pytestmark = pytest.mark.redis


def fresh_layout() -> RedisLayout:
    return RedisLayout(f"t{uuid.uuid4().hex[:10]}:")


def update(
    layout: RedisLayout,
    key: str,
    offset: int,
    *,
    rank: int = 0,
    source: str = "s:0",
    topic_key: str | None = None,
    deleted: bool = False,
    indexes: Sequence[str] = (),
) -> Update:
    fields = None if deleted else {"state": f"{key}@{rank}/{offset}", "record": "{}"}
    return Update(
        layout.state("breaker", key),  # type: ignore[arg-type]
        topic_key or key,
        source,
        offset,
        rank,
        fields,
        tuple(indexes),
    )


async def started(redis_url: str, layout: RedisLayout) -> tuple[Redis, ProjectionStore]:
    client = Redis.from_url(redis_url)
    store = ProjectionStore(client, layout, ttl_ms=60_000)
    await store.reset({"rebuilds": "1"})
    return client, store


def test_a_batch_lands_with_its_offsets_and_a_notification_per_hash(redis_url: str) -> None:
    async def scenario() -> None:
        layout = fresh_layout()
        client, store = await started(redis_url, layout)
        pubsub = client.pubsub()
        await pubsub.subscribe(layout.changes)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        batch = [update(layout, "a", 3), update(layout, "b", 4, indexes=[layout.prefix + "i"])]
        assert await store.apply(batch, {"s:0": 5}, {"updated_at_ms": "1"}) == 2
        assert await store.positions() == {"s:0": 5}
        held = await client.hgetall(layout.state("breaker", "a"))  # type: ignore[arg-type]
        assert held[b"state"] == b"a@0/3"
        assert held[b"offset"] == b"3"
        assert await client.smembers(layout.prefix + "i") == {
            layout.state("breaker", "b").encode()  # type: ignore[arg-type]
        }
        assert 0 < await client.pttl(layout.state("breaker", "a")) <= 60_000  # type: ignore[arg-type]
        notified = [await pubsub.get_message(timeout=1) for _ in range(2)]
        assert {m["data"] for m in notified if m} == {
            layout.state("breaker", k).encode()  # type: ignore[arg-type]
            for k in "ab"
        }
        # Offsets in meta only move forwards (a slower projector's older batch).
        await store.apply([], {"s:0": 2}, {})
        assert await store.positions() == {"s:0": 5}
        await pubsub.aclose()
        await client.aclose()

    asyncio.run(scenario())


def test_a_tombstone_deletes_the_hash_and_its_index_memberships(redis_url: str) -> None:
    async def scenario() -> None:
        layout = fresh_layout()
        client, store = await started(redis_url, layout)
        index = layout.prefix + "budget-index:team=research"
        await store.apply([update(layout, "a", 1, indexes=[index])], {}, {})
        await store.apply([update(layout, "a", 2, deleted=True)], {}, {})
        assert not await client.exists(layout.state("breaker", "a"))  # type: ignore[arg-type]
        assert not await client.smembers(index)
        await client.aclose()

    asyncio.run(scenario())


def test_nothing_is_written_once_redis_lost_the_projection(redis_url: str) -> None:
    async def scenario() -> None:
        layout = fresh_layout()
        client, store = await started(redis_url, layout)
        await client.delete(layout.meta)  # what FLUSHALL or an empty restart does to it
        with pytest.raises(ProjectionLost):
            await store.apply([update(layout, "a", 1)], {"s:0": 2}, {})
        assert not await client.exists(layout.state("breaker", "a"))  # type: ignore[arg-type]
        assert await store.positions() is None
        await client.aclose()

    asyncio.run(scenario())


def test_a_rebuild_wipes_only_its_own_prefix(redis_url: str) -> None:
    async def scenario() -> None:
        mine, other = fresh_layout(), fresh_layout()
        client, store = await started(redis_url, mine)
        neighbour_client, neighbour = await started(redis_url, other)
        await store.apply([update(mine, "a", 1)], {"s:0": 2}, {})
        await neighbour.apply([update(other, "a", 1)], {"s:0": 2}, {})
        await store.reset({"rebuilds": "2"})
        assert await store.positions() == {}
        assert not await client.exists(mine.state("breaker", "a"))  # type: ignore[arg-type]
        assert await neighbour.positions() == {"s:0": 2}
        await neighbour_client.aclose()
        await client.aclose()

    asyncio.run(scenario())


DEPENDENCY_RECORD = (
    b'{"node":"dep.t001","subject":"tool:t001","availability":"unavailable",'
    b'"previous":"available","cause":["dep.t001","dep.openai"],'
    b'"reason":"dep.openai is down: dep.t001 -> dep.openai","criticality":null,'
    b'"trigger":"vendor:openai down","breaker_key":"openai","policy_version":"v1",'
    b'"updated_at":"2026-11-01T00:00:00Z"}'
)


def test_a_dependency_hash_is_projected_notified_and_wiped_by_a_rebuild(redis_url: str) -> None:
    async def scenario() -> None:
        layout = fresh_layout()
        client, store = await started(redis_url, layout)
        pubsub = client.pubsub()
        await pubsub.subscribe(layout.changes)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        source = "guardstream.dependency-state:0"
        record = update_of(layout, Surface.DEPENDENCY, source, 0, b"tool:t001", DEPENDENCY_RECORD)
        assert await store.apply([record], {source: 1}, {}) == 1
        hash_key = layout.state(Surface.DEPENDENCY, "tool:t001")
        held = await client.hgetall(hash_key)
        assert held[b"availability"] == b"unavailable"
        assert held[b"cause"] == b'["dep.t001","dep.openai"]'
        assert held[b"topic_key"] == b"tool:t001"
        notified = await pubsub.get_message(timeout=1)
        assert notified is not None
        assert notified["data"] == hash_key.encode()
        await store.reset({"rebuilds": "2"})  # what the projector does after a FLUSHALL
        assert not await client.exists(hash_key)
        assert await store.positions() == {}
        await pubsub.aclose()
        await client.aclose()

    asyncio.run(scenario())


# Updates of three hashes from two partitions (a budget ledger's periods can live in two; a
# topic key, one period, lives in one),
# applied in batches in any order, some batches applied twice (a retry after a timeout whose
# first attempt did land, or a second projector): every hash ends as the newest update.
keyed_updates = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),  # hash, rank (period)
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=keyed_updates, data=st.data())
def test_any_interleaving_with_retries_ends_at_the_newest_state(
    redis_url: str, spec: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    layout = fresh_layout()
    # Offsets grow per partition in publication order; ranks (periods) are data.
    offsets = {0: 0, 1: 0}
    published: list[Update] = []
    for key, rank in spec:
        partition = (ord(key) + rank) % 2
        offsets[partition] += 1
        topic_key = f"{key}@{rank}"
        published.append(
            update(
                layout,
                key,
                offsets[partition],
                rank=rank,
                source=f"s:{partition}",
                topic_key=topic_key,
            )
        )
    # The newest of each hash: highest period; within a period one topic key, one partition.
    newest: dict[str, Update] = {}
    for candidate in published:
        current = newest.get(candidate.hash_key)
        if current is None or (candidate.rank, candidate.offset) > (current.rank, current.offset):
            newest[candidate.hash_key] = candidate
    assert all(is_newer(u, None) for u in newest.values())
    order = data.draw(st.permutations(published))
    retried = data.draw(st.lists(st.sampled_from(published), max_size=10))
    batches = data.draw(st.integers(1, 5))

    async def scenario() -> dict[str, bytes]:
        client, store = await started(redis_url, layout)
        applying = [*order, *retried]
        size = max(1, len(applying) // batches)
        for start in range(0, len(applying), size):
            await store.apply(applying[start : start + size], {}, {})
        held = {key: await client.hget(key, "state") for key in newest}
        await client.aclose()
        return {k: v for k, v in held.items() if v is not None}

    held = asyncio.run(scenario())
    assert held == {k: u.fields["state"].encode() for k, u in newest.items() if u.fields}
