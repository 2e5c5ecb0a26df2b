"""Publishes clock ticks into the input partitions a worker owns (shell: wall clock + Kafka).

Time-driven transitions (a breaker's wait, period rollover, alert resolution) need event time
to pass when no events arrive. The worker reads the wall clock here, and only here, and writes
it into the stream as a tick; the kernels see time only through the stream, so a replay of the
same records makes the same decisions (DESIGN §6).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError

from schemas.clock import ClockTick
from topics.catalog import INPUT_TOPICS, TopicCatalog
from topics.publish import EventPublisher
from workers.errors import BrokerUnavailableError
from workers.settings import Settings

log = logging.getLogger(__name__)

AssignedPartitions = Callable[[], Iterable[tuple[str, int]]]


class ClockTicker:
    """Sends `ClockTick(now)` to each owned input partition; call `tick()` on a timer."""

    def __init__(
        self,
        catalog: TopicCatalog,
        client_options: Mapping[str, Any],
        assigned: AssignedPartitions,
        *,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._catalog = catalog
        self._client_options = client_options
        self._assigned = assigned
        self._now_ms = now_ms
        self._publisher: EventPublisher | None = None
        self._input_names = {catalog.name(topic): topic for topic in INPUT_TOPICS}
        self.sent = 0

    async def tick(self) -> int:
        """Publish one tick per owned input partition; returns how many were sent."""
        owned: dict[Any, list[int]] = {}
        for topic, partition in self._assigned():
            logical = self._input_names.get(topic)
            if logical is not None:
                owned.setdefault(logical, []).append(partition)
        if not owned:
            return 0
        try:
            publisher = await self._started()
            tick = ClockTick.at(self._now_ms())
            sent = 0
            for logical, partitions in owned.items():
                sent += len(await publisher.publish_clock(tick, [logical], sorted(partitions)))
        except (KafkaError, BrokerUnavailableError) as exc:
            # A missed tick only delays time-driven transitions until the next one.
            log.warning("clock tick not published: %s", exc)
            return 0
        self.sent += sent
        return sent

    async def stop(self) -> None:
        if self._publisher is not None:
            await self._publisher.__aexit__(None, None, None)
            self._publisher = None

    async def _started(self) -> EventPublisher:
        if self._publisher is None:
            publisher = EventPublisher(self._catalog, self._client_options)
            await publisher.__aenter__()
            self._publisher = publisher
        return self._publisher


def register_clock_ticker(app: faust.App, settings: Settings, catalog: TopicCatalog) -> None:
    """Publish a clock tick to every input partition this worker owns, every
    `settings.clock_interval_s` (0: never)."""
    if settings.clock_interval_s <= 0:
        return

    def owned() -> list[tuple[str, int]]:
        consumer = app.consumer if app.started else None
        return (
            [] if consumer is None else [(tp.topic, tp.partition) for tp in consumer.assignment()]
        )

    ticker = ClockTicker(catalog, settings.kafka_client_options(), owned)

    async def publish_clock_tick() -> None:
        await ticker.tick()

    app.timer(interval=settings.clock_interval_s, name="guardstream.clock")(publish_clock_tick)

    async def stop_ticker(sender: Any, **kwargs: Any) -> None:
        await ticker.stop()

    app.on_before_shutdown.connect(cast(Any, stop_ticker))
