"""What the projector reads (workers.projection.projector): every compacted state topic, each
with the partition count the catalog gives it (dependency-state has one, the others the input
partitions), so a topic added to the catalog is projected and rebuilt with the rest."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from topics.catalog import TopicCatalog, TopicName
from workers.projection.layout import RedisLayout
from workers.projection.projector import SURFACES, Projector
from workers.projection.store import ProjectionStore

CATALOG = TopicCatalog(prefix="t.", input_partitions=3)


class _Broker:
    """The one consumer call `_partitions` makes: every state topic exists."""

    async def topics(self) -> set[str]:
        return {CATALOG.name(topic) for topic in TopicName}


def test_every_state_topic_has_a_surface_of_its_own() -> None:
    assert set(SURFACES) == {topic for topic in TopicName if topic.endswith("-state")}
    assert len(set(SURFACES.values())) == len(SURFACES)


def test_the_projector_assigns_each_state_topic_the_catalogs_partitions() -> None:
    store = ProjectionStore(Redis(), RedisLayout.for_topic_prefix("t."), ttl_ms=0)  # no I/O here
    projector = Projector({}, "unused:9092", CATALOG, store)
    assigned = asyncio.run(projector._partitions(_Broker(), asyncio.Event()))  # type: ignore[arg-type]
    by_topic: dict[str, list[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    assert by_topic == {CATALOG.name(topic): list(range(3)) for topic in SURFACES} | {
        CATALOG.name(TopicName.DEPENDENCY_STATE): [0]
    }
