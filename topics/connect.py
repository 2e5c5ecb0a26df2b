"""Starting an aiokafka client, with an unreachable broker reported as one clear error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiokafka.errors import KafkaError

from topics.errors import BrokerUnavailableError


class _Startable(Protocol):
    def start(self) -> Awaitable[None]: ...


async def start_client(
    client: _Startable, bootstrap: str, release: Callable[[], Awaitable[None]]
) -> None:
    """``await client.start()``; on a Kafka error, ``release()`` what it opened and raise
    BrokerUnavailableError naming the bootstrap servers (exit code 5 in the CLI)."""
    try:
        await client.start()
    except KafkaError as exc:
        await release()
        raise BrokerUnavailableError(bootstrap, exc) from exc


class _TopicLister(Protocol):
    def topics(self) -> Awaitable[set[str]]: ...


async def wait_for_topics(
    consumer: _TopicLister,
    names: Iterable[str],
    stopping: asyncio.Event,
    log: logging.Logger,
    poll_s: float = 2.0,
) -> bool:
    """Wait until every topic in `names` exists (the worker creates them at its start); False
    if `stopping` is set first. Logs what it waits for at each poll."""
    wanted = set(names)
    while True:
        missing = sorted(wanted - await consumer.topics())
        if not missing:
            return True
        log.warning("waiting for the topics %s", ", ".join(missing))
        try:
            await asyncio.wait_for(stopping.wait(), timeout=poll_s)
        except TimeoutError:
            continue
        return False
