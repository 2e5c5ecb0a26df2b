"""Starting an aiokafka client, with an unreachable broker reported as one clear error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
