"""Create and verify the catalog's topics against a live cluster (idempotent)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from topics.catalog import TopicSpec
from topics.connect import start_client

# Settings whose difference breaks guardstream's semantics; anything else is only reported.
_CRITICAL_CONFIGS = ("cleanup.policy",)
_REPORTED_CONFIGS = ("retention.ms", "min.insync.replicas")


class TopicAction(StrEnum):
    CREATED = "created"
    OK = "ok"
    MISMATCH = "mismatch"
    MISSING = "missing"


@dataclass(slots=True)
class TopicStatus:
    """Outcome for one catalog topic; ``problems`` fail verification, ``notes`` do not."""

    name: str
    action: TopicAction
    partitions: int | None = None
    config: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": str(self.action),
            "partitions": self.partitions,
            "config": self.config,
            "problems": self.problems,
            "notes": self.notes,
        }


def problems_of(statuses: Sequence[TopicStatus]) -> list[str]:
    """Everything that fails verification (only MISMATCH and MISSING statuses carry problems)."""
    return [problem for status in statuses for problem in status.problems]


def compare(spec: TopicSpec, partitions: int, config: dict[str, str]) -> TopicStatus:
    """Judge an existing topic against its spec (pure, so it is table-tested)."""
    shown = {k: v for k, v in config.items() if k in _CRITICAL_CONFIGS + _REPORTED_CONFIGS}
    status = TopicStatus(spec.name, TopicAction.OK, partitions=partitions, config=shown)
    if partitions != spec.partitions:
        status.problems.append(
            f"{spec.name}: has {partitions} partitions, catalog says {spec.partitions}"
        )
    wanted = spec.config()
    for key in _CRITICAL_CONFIGS:
        if config.get(key) != wanted.get(key):
            status.problems.append(
                f"{spec.name}: {key}={config.get(key)!r}, catalog says {wanted.get(key)!r}"
            )
    for key in _REPORTED_CONFIGS:
        if key in wanted and config.get(key) != wanted[key]:
            status.notes.append(f"{key}={config.get(key)!r} (catalog default {wanted[key]!r})")
    if status.problems:
        status.action = TopicAction.MISMATCH
    return status


class TopicAdmin:
    """Thin async wrapper over aiokafka's admin client for the catalog's needs."""

    def __init__(self, client_options: dict[str, Any]) -> None:
        self._bootstrap = str(client_options.get("bootstrap_servers", "?"))
        self._client = AIOKafkaAdminClient(**client_options, request_timeout_ms=30_000)

    async def __aenter__(self) -> TopicAdmin:
        await start_client(self._client, self._bootstrap, self._client.close)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close()

    async def existing(self, names: Sequence[str]) -> dict[str, tuple[int, dict[str, str]]]:
        """Partition count and topic-level config of the named topics that exist."""
        present = set(await self._client.list_topics()) & set(names)
        if not present:
            return {}
        described = await self._client.describe_topics(sorted(present))
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(present)]
        configs: dict[str, dict[str, str]] = {}
        for response in await self._client.describe_configs(resources):
            for _err, _msg, _rtype, name, entries in response.resources:
                configs[name] = {entry[0]: entry[1] for entry in entries}
        return {name: (partitions[name], configs.get(name, {})) for name in present}

    async def verify(self, specs: Sequence[TopicSpec]) -> list[TopicStatus]:
        found = await self.existing([spec.name for spec in specs])
        statuses = []
        for spec in specs:
            if spec.name in found:
                statuses.append(compare(spec, *found[spec.name]))
            else:
                statuses.append(
                    TopicStatus(spec.name, TopicAction.MISSING, problems=[f"{spec.name}: missing"])
                )
        return statuses

    async def ensure(self, specs: Sequence[TopicSpec]) -> list[TopicStatus]:
        """Create the missing topics, then verify all of them."""
        found = await self.existing([spec.name for spec in specs])
        created = []
        for spec in specs:
            if spec.name in found:
                continue
            try:
                await self._client.create_topics([_new_topic(spec)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process won the race; verification below judges it
        if created:
            await self._wait_visible(created)
        statuses = await self.verify(specs)
        for status in statuses:
            if status.name in created and status.action is TopicAction.OK:
                status.action = TopicAction.CREATED
        return statuses

    async def _wait_visible(self, names: Sequence[str], timeout_s: float = 15.0) -> None:
        """Creation is acknowledged before every broker's metadata cache has the topic."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if set(names) <= set(await self._client.list_topics()):
                return
            await asyncio.sleep(0.1)


def _new_topic(spec: TopicSpec) -> NewTopic:
    config = spec.config()
    if spec.replication >= 3:
        # acks=all must survive the loss of one replica without losing data (DESIGN §10).
        config.setdefault("min.insync.replicas", "2")
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=spec.replication,
        topic_configs=config,
    )
