"""The alert forwarder: the alerts topic -> its receivers (Alertmanager, webhooks, Slack,
PagerDuty), at least once (shell).

Every record goes to the receivers the route names for its incident (Alertmanager gets all;
a routes file's receivers what its label routes match, `workers.alerting.routes`), in topic
order. A process of its own (`guardstream alerts forward`), not an agent in the worker: a
receiver that is slow or down then never slows a decision, and the forwarder restarts, scales and is
configured apart from the worker. It reads committed records only (an exactly-once worker's
aborted alerts are never sent).

Where it stands is its consumer group's committed offsets (`<app>-alert-forwarder`): a record
below them was delivered (or dead-lettered), one at or past them was not. So that it can
re-send what is firing, every start reads the topic from its beginning: records below the
committed offsets only rebuild the open incidents, the others are delivered; once it has read
up to the committed offsets, every open incident is sent again to the receivers that want
re-sends (Alertmanager, which takes the same alert twice as one), and again every
`resend_interval_s`, which keeps a firing alert's `endsAt` in the future for as long as the
forwarder runs.

A batch a receiver does not take is retried with capped, jittered exponential backoff; a
batch it refuses for good (HTTP 4xx) is split and each refused alert goes to the dead-letter
topic with the receiver's answer, and so does a batch still undelivered after
`give_up_after_s`. Offsets are committed only after that, so a forwarder killed mid-batch
sends that batch again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.codec import decode, encode
from schemas.dead_letter import DeadLetter, DeadLetterKind
from topics.catalog import TopicCatalog, TopicName
from topics.connect import start_client, wait_for_topics
from workers.alerting.book import DeliveryBook
from workers.alerting.postable import Delivery, Links
from workers.alerting.receivers import Outcome, Receiver, Rendering
from workers.stopping import stopped_within

log = logging.getLogger(__name__)

MAX_ALERTS_PER_POST = 500
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
_FETCH_TIMEOUT_MS = 500

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    resend_interval_s: float = 60.0
    """How often firing alerts are sent again (Alertmanager's own default resolve_timeout is
    5 minutes; a firing alert's endsAt is `ttl_factor` intervals ahead)."""
    ttl_factor: int = 4
    give_up_after_s: float = 300.0
    """How long a batch is retried before it goes to the dead-letter topic."""
    links: Links = field(default_factory=Links)

    @property
    def rendering(self) -> Rendering:
        ttl_ms = int(self.resend_interval_s * self.ttl_factor * 1000)
        return Rendering(ttl_ms=ttl_ms, links=self.links)


Route = Callable[[Alert], Sequence[str]]
"""The names of the receivers an incident's alerts go to (given its firing record)."""


@dataclass(slots=True)
class ReceiverCounters:
    delivered: int = 0
    """Alerts the receiver took, first deliveries only."""
    resent: int = 0
    """Firing alerts sent again (after a start and every resend interval)."""
    failed_attempts: int = 0
    dead_lettered: int = 0
    last_delivery_unixtime: float | None = None


@dataclass(slots=True)
class ForwarderCounters:
    """What the forwarder has done, for /metrics (read when scraped)."""

    records: int = 0
    unreadable: int = 0
    unrouted: int = 0
    """Alerts no route sent anywhere."""
    firing: int = 0
    lag_records: int = 0
    receivers: dict[str, ReceiverCounters] = field(default_factory=dict)

    def of(self, receiver: str) -> ReceiverCounters:
        return self.receivers.setdefault(receiver, ReceiverCounters())

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.receivers.values())

    @property
    def resent(self) -> int:
        return sum(c.resent for c in self.receivers.values())

    @property
    def failed_attempts(self) -> int:
        return sum(c.failed_attempts for c in self.receivers.values())

    @property
    def dead_lettered(self) -> int:
        return sum(c.dead_lettered for c in self.receivers.values())


class Forwarder:
    def __init__(
        self,
        client_options: Mapping[str, Any],
        bootstrap: str,
        catalog: TopicCatalog,
        receivers: Sequence[Receiver],
        group_id: str,
        settings: ForwardSettings | None = None,
        route: Route | None = None,
        counters: ForwarderCounters | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_options = client_options
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.receivers = {receiver.name: receiver for receiver in receivers}
        everyone = list(self.receivers)
        self.route: Route = route or (lambda alert: everyone)
        self.group_id = group_id
        self.settings = settings or ForwardSettings()
        self.counters = counters or ForwarderCounters()
        self.clock = clock
        self.caught_up = asyncio.Event()
        """Set once the records below the committed offsets are read and the open
        incidents re-sent."""
        self.book = DeliveryBook()
        self._topic = catalog.name(TopicName.ALERTS)
        self._dead_letters = catalog.name(TopicName.DEAD_LETTER)

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            **self.client_options,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(**self.client_options, acks="all", enable_idempotence=True)
        await start_client(consumer, self.bootstrap, consumer.stop)

        async def release() -> None:
            await producer.stop()
            await consumer.stop()

        await start_client(producer, self.bootstrap, release)
        try:
            if not await wait_for_topics(consumer, [self._topic], stopping, log):
                return
            partitions = [
                TopicPartition(self._topic, p)
                for p in range(self.catalog.spec(TopicName.ALERTS).partitions)
            ]
            consumer.assign(partitions)
            delivered_to = await self._delivered_to(consumer, partitions)
            await consumer.seek_to_beginning(*partitions)
            log.info("alert forwarder started; delivered up to %s", delivered_to)
            next_resend = 0.0
            while not stopping.is_set():
                if not await self._forward_next(consumer, producer, delivered_to, stopping):
                    return
                if not self.caught_up.is_set():
                    read_to = {tp: await consumer.position(tp) for tp in partitions}
                    if any(read_to[tp] < delivered_to[tp] for tp in partitions):
                        continue
                    self.caught_up.set()
                if time.monotonic() >= next_resend:
                    await self._resend()
                    next_resend = time.monotonic() + self.settings.resend_interval_s
        finally:
            await producer.stop()
            await consumer.stop()
            for receiver in self.receivers.values():
                await receiver.close()

    async def _delivered_to(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where the group stands per partition; 0 where it stands past the partition's end
        (a log truncated by an unclean leader election: what is there now was not
        delivered). Deleting a topic deletes the group's offsets with it."""
        ends = await consumer.end_offsets(list(partitions))
        delivered_to = {}
        for tp in partitions:
            committed = await consumer.committed(tp) or 0
            if committed > ends[tp]:
                log.warning(
                    "%s[%d]: the group stands at %d, past the end %d: delivering it all",
                    tp.topic,
                    tp.partition,
                    committed,
                    ends[tp],
                )
                committed = 0
            delivered_to[tp] = committed
        return delivered_to

    async def _forward_next(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        delivered_to: dict[TopicPartition, int],
        stopping: asyncio.Event,
    ) -> bool:
        """Read one batch, deliver what was not delivered, commit; False when stopping
        interrupted a delivery (nothing committed: it is sent again at the next start)."""
        fetched = await consumer.getmany(
            timeout_ms=_FETCH_TIMEOUT_MS, max_records=MAX_ALERTS_PER_POST
        )
        # Every record, in order: a firing and its resolution in one batch are both sent (a
        # pager must see the incident, not only its end).
        pending: list[tuple[Record, Delivery]] = []
        for tp, records in fetched.items():
            for record in records:
                delivery = self._observe(record)
                if delivery is not None and record.offset >= delivered_to[tp]:
                    pending.append((record, delivery))
        self.counters.firing = len(self.book)
        if pending and not await self._deliver(pending, producer, stopping):
            return False
        positions = {tp: await consumer.position(tp) for tp in fetched}
        moved = {tp: p for tp, p in positions.items() if p > delivered_to[tp]}
        if moved:
            try:
                await consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in moved.items()})
            except KafkaError as exc:  # delivered, not recorded: sent again after a restart
                log.warning("committing the delivered offsets failed: %r", exc)
            delivered_to.update(moved)
        self.counters.lag_records = sum(
            max(0, (consumer.highwater(tp) or 0) - delivered_to[tp]) for tp in delivered_to
        )
        return True

    def _observe(self, record: Record) -> Delivery | None:
        self.counters.records += 1
        try:
            alert = decode(Alert, record.value or b"")
        except (ValidationError, ValueError) as exc:
            self.counters.unreadable += 1
            log.warning(
                "skipping an unreadable alert record %s:%s@%s: %s",
                record.topic,
                record.partition,
                record.offset,
                str(exc).splitlines()[0],
            )
            return None
        return self.book.observe(alert)

    async def _deliver(
        self,
        pending: Sequence[tuple[Record, Delivery]],
        producer: AIOKafkaProducer,
        stopping: asyncio.Event,
    ) -> bool:
        """Deliver `pending` to the receivers its routes name, or dead-letter what cannot
        be; False if stopping first."""
        by_receiver: dict[str, list[tuple[Record, Delivery]]] = {}
        for record, delivery in pending:
            names = self.route(delivery.identity)
            if not names:
                self.counters.unrouted += 1
            for name in names:
                by_receiver.setdefault(name, []).append((record, delivery))
        for name, share in by_receiver.items():
            if not await self._deliver_to(self.receivers[name], share, producer, stopping):
                return False
        return True

    async def _deliver_to(
        self,
        receiver: Receiver,
        pending: Sequence[tuple[Record, Delivery]],
        producer: AIOKafkaProducer,
        stopping: asyncio.Event,
    ) -> bool:
        counters = self.counters.of(receiver.name)
        for start in range(0, len(pending), MAX_ALERTS_PER_POST):
            chunk = pending[start : start + MAX_ALERTS_PER_POST]
            outcome = await self._send_retrying(receiver, [d for _, d in chunk], stopping)
            if outcome is None:
                return False
            if outcome.delivered:
                counters.delivered += len(chunk)
                continue
            if outcome.permanent and len(chunk) > 1:  # find the alerts refused, keep the rest
                for one in chunk:
                    if not await self._deliver_to(receiver, [one], producer, stopping):
                        return False
                continue
            await self._dead_letter(receiver.name, chunk, outcome.reason, producer)
        return True

    async def _send_retrying(
        self, receiver: Receiver, deliveries: Sequence[Delivery], stopping: asyncio.Event
    ) -> Outcome | None:
        """The receiver's last answer: delivered, refused for good, or still failing after
        `give_up_after_s`; None if stopping first."""
        counters = self.counters.of(receiver.name)
        give_up_at = time.monotonic() + self.settings.give_up_after_s
        delay = BACKOFF_FIRST_S
        while True:
            outcome = await receiver.send(deliveries, int(self.clock() * 1000))
            if outcome.delivered:
                counters.last_delivery_unixtime = self.clock()
                return outcome
            counters.failed_attempts += 1
            log.warning(
                "%s did not take %d alerts: %s", receiver.name, len(deliveries), outcome.reason
            )
            if outcome.permanent or time.monotonic() >= give_up_at:
                return outcome
            if await stopped_within(stopping, delay * random.uniform(0.5, 1.0)):
                return None
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _resend(self) -> None:
        """Send every open incident again, once, to the receivers that want it: a failure is
        logged and counted, and the next resend tries again (nothing is lost: the incidents
        stay open in the book)."""
        firing = list(self.book.firing())
        for receiver in self.receivers.values():
            if not receiver.resends:
                continue
            counters = self.counters.of(receiver.name)
            mine = [d for d in firing if receiver.name in self.route(d.identity)]
            for start in range(0, len(mine), MAX_ALERTS_PER_POST):
                chunk = mine[start : start + MAX_ALERTS_PER_POST]
                outcome = await receiver.send(chunk, int(self.clock() * 1000))
                if not outcome.delivered:
                    counters.failed_attempts += 1
                    log.warning("re-sending firing alerts failed: %s", outcome.reason)
                    break
                counters.resent += len(chunk)
                counters.last_delivery_unixtime = self.clock()

    async def _dead_letter(
        self,
        receiver: str,
        failed: Sequence[tuple[Record, Delivery]],
        reason: str,
        producer: AIOKafkaProducer,
    ) -> None:
        now_ms = int(self.clock() * 1000)
        for record, _ in failed:
            letter = DeadLetter.build(
                original=record.value or b"",
                original_key=record.key,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_kind=DeadLetterKind.DELIVERY,
                error=f"{receiver}: {reason}",
                record_ts=record.timestamp,
                received_at=now_ms,
                expected_type="Alert",
            )
            await producer.send_and_wait(self._dead_letters, encode(letter), key=record.key)
        self.counters.of(receiver).dead_lettered += len(failed)
        log.error("%d alerts for %s dead-lettered: %s", len(failed), receiver, reason)
