"""A lost transaction gives partitions up instead of crashing (workers.batching.migration,
runner, outputs). The end-to-end proof — a fenced zombie, a starved pair, a broker restart —
is in tests/e2e/test_crash_safety.py; these pin the rules each piece follows."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced
from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message

from workers.batching import BatchingApp, BatchTopic, RawBatch
from workers.batching.migration import TransactionLost
from workers.batching.outputs import BatchOutputs
from workers.batching.records import StoredRecord
from workers.batching.runner import run_batches
from workers.batching.transactions import transactional_id

TOPIC = "p.tool-invocations"


@dataclass
class FakeTxnManager:
    fatal: bool = False
    in_transaction: bool = True

    def is_fatal_error(self) -> bool:
        return self.fatal

    def is_in_transaction(self) -> bool:
        return self.in_transaction


@dataclass
class FakeTransactionalProducer:
    _txn_manager: FakeTxnManager = field(default_factory=FakeTxnManager)
    stopped: bool = False

    async def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeFaustProducer:
    """Faust's producer as the migration sees it: its transactional producers by id."""

    _transaction_producers: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def app() -> BatchingApp:
    # A stand-in producer: Faust's own would open an event loop of its own in a unit test.
    app = BatchingApp("guardstream-test", processing_guarantee="exactly_once")
    BatchTopic(app, topics=[TOPIC])
    app._producer = FakeFaustProducer()  # type: ignore[assignment]
    return app


def batch(partition: int, offset: int) -> RawBatch:
    record = StoredRecord(TOPIC, partition, offset, 0, None, b"{}")
    return RawBatch(TOPIC, partition, [record])


@dataclass(eq=False)  # hashable by identity, as Faust's messages
class FakeMessage:
    offset: int
    acked: bool = False


@dataclass
class FakeEvent:
    message: FakeMessage


class FakeStream:
    """What run_batches uses of a Faust stream: iteration and the current event."""

    def __init__(self, *batches: RawBatch) -> None:
        self.batches = batches
        self.current_event: FakeEvent | None = None
        self.messages: list[FakeMessage] = []

    async def __aiter__(self) -> AsyncIterator[RawBatch]:
        for item in self.batches:
            message = FakeMessage(item.records[-1].offset)
            self.messages.append(message)
            self.current_event = FakeEvent(message)
            yield item
            self.current_event = None

    def left_unacked(self) -> list[int]:
        return [message.offset for message in self.messages if message.acked]


def stream(*batches: RawBatch) -> FakeStream:
    return FakeStream(*batches)


async def test_a_lost_transaction_blocks_commits_and_drops_the_producers_that_cannot_go_on(
    app: BatchingApp,
) -> None:
    transactions: dict[str, Any] = app.producer._transaction_producers  # type: ignore[attr-defined]
    fenced = transactions["t-0"] = FakeTransactionalProducer()
    healthy = transactions["t-1"] = FakeTransactionalProducer()
    broken = transactions["t-2"] = FakeTransactionalProducer(FakeTxnManager(fatal=True))
    idle = transactions["t-3"] = FakeTransactionalProducer(FakeTxnManager(in_transaction=False))

    await app.migration.lost(ProducerFenced(), "t-0")

    assert app.migration.commits_blocked
    assert set(transactions) == {"t-1"}  # nothing is ever sent outside a transaction
    assert not fenced.stopped  # not under a running batch's feet: once no batch is in progress
    await app.migration.retired()
    assert [fenced.stopped, broken.stopped, idle.stopped, healthy.stopped] == [1, 1, 1, 0]
    assert app.migration.migrations == 1
    await app.migration.lost(ProducerFenced(), None)  # the same episode: counted once
    assert app.migration.migrations == 1


async def test_commits_resume_only_with_an_assignment_after_a_revocation_after_the_loss(
    app: BatchingApp,
) -> None:
    app.migration.on_revoked()  # an earlier rebalance
    await app.migration.lost(KafkaConnectionError(), None)
    app.migration.on_assigned()  # lost during this very assignment: the rejoin is pending
    assert app.migration.commits_blocked
    app.migration.on_revoked()  # the rejoin: every partition revoked, state forgotten
    app.migration.on_assigned()  # even in the same generation (a lone member's rejoin)
    assert not app.migration.commits_blocked
    app.migration.on_assigned()  # nothing lost: nothing to resume
    assert app.migration.migrations == 1


async def test_a_batch_that_loses_its_transaction_is_dropped_and_the_loop_goes_on(
    app: BatchingApp,
) -> None:
    handled: list[int] = []

    async def handle(item: RawBatch) -> None:
        offset = item.records[0].offset
        if offset == 1:
            raise TransactionLost("t-0", ProducerFenced())
        handled.append(offset)

    batches = stream(batch(0, 0), batch(0, 1), batch(1, 2))
    await run_batches(app, batches, handle)  # type: ignore[arg-type]
    # Batch 2 came while the worker was giving its partitions up: skipped, read again later.
    assert handled == [0]
    # Neither the failed batch nor the skipped one may count as processed: their acks are
    # made no-ops (a rejoin in the same generation would commit them otherwise).
    assert batches.left_unacked() == [1, 2]
    assert app.migration.commits_blocked
    assert app.commit_gate.idle

    app.migration.on_revoked()
    app.migration.on_assigned()
    await run_batches(app, stream(batch(1, 2)), handle)  # type: ignore[arg-type]
    assert handled == [0, 2]


@pytest.mark.parametrize("failure", [KafkaConnectionError(), ValueError("a bug")])
async def test_any_other_failure_of_a_batch_gives_the_partitions_up_too(
    app: BatchingApp, failure: Exception
) -> None:
    async def handle(item: RawBatch) -> None:
        raise failure

    await run_batches(app, stream(batch(0, 0)), handle)  # type: ignore[arg-type]
    assert app.migration.commits_blocked  # its acked offset is never committed


class FencedProducer:
    async def send(self, *args: Any, **kwargs: Any) -> None:
        raise ProducerFenced()


async def test_an_output_that_cannot_be_sent_names_the_lost_transaction(
    app: BatchingApp,
) -> None:
    app._producer = FencedProducer()  # type: ignore[assignment]
    outputs = BatchOutputs(app)
    with pytest.raises(TransactionLost) as lost:
        await outputs.send((TOPIC, 3), "p.audit", b"k", b"v")
    assert lost.value.transactional_id == transactional_id(app, TOPIC, 3)
    assert isinstance(lost.value.cause, ProducerFenced)


class LostCommits:
    """`BatchingTransactionManager.commit` as it ends when a transaction was lost."""

    async def commit(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        return False


def message(partition: int, offset: int) -> Message:
    return Message(TOPIC, partition, offset, 0.0, 0, {}, None, b"{}", None)


async def test_offsets_a_commit_failed_to_commit_are_not_taken_for_committed(
    app: BatchingApp,
) -> None:
    # Seen in the zombie test: a commit failing after the loss made Faust take offset 16 for
    # committed; read again from 0 after the rejoin, no record could be acked any more, and
    # the transaction holding their outputs never committed.
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()  # not started here: its loop would be left open
    tp = TP(TOPIC, 3)
    consumer.assignment = lambda: {tp}
    consumer.transactions = LostCommits()
    consumer.in_transaction = True
    app.topics._acking_topics.add(TOPIC)  # as an agent's subscription would (Faust's conductor)
    assert not await consumer._commit_offsets({tp: 16})
    assert consumer._committed_offset[tp] is None
    assert consumer.ack(message(3, 0))  # read again from what is committed: acked


async def test_records_dropped_while_flow_is_stopped_are_fetched_again(app: BatchingApp) -> None:
    # Seen in the zombie test: two partitions newly assigned to the zombie, fetched before
    # Faust resumed flow, with nothing committed for them: aiokafka's seek_to_committed
    # leaves such a partition where it is, and their sixteen clock ticks were never read.
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()  # not started here: its loop would be left open
    nothing_committed, committed = TP(TOPIC, 2), TP(TOPIC, 3)
    revoked = TP(TOPIC, 1)
    seeks: list[tuple[TP, int]] = []

    async def seek_to_committed() -> None:
        consumer._committed_offset[committed] = 5

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    consumer.perform_seek = seek_to_committed
    consumer.seek = seek
    consumer.assignment = lambda: {nothing_committed, committed}
    dropped = {
        nothing_committed: [
            StoredRecord(TOPIC, 2, 7, 0, None, b"{}"),
            StoredRecord(TOPIC, 2, 8, 0, None, b"{}"),
        ],
        committed: [StoredRecord(TOPIC, 3, 9, 0, None, b"{}")],
        revoked: [StoredRecord(TOPIC, 1, 4, 0, None, b"{}")],
    }
    await consumer._seek_back_after_pause(dropped)
    assert seeks == [(nothing_committed, 7)]


async def test_a_delivery_outlasting_a_rebalance_leaves_the_new_generation_alone(
    app: BatchingApp,
) -> None:
    # Seen in the broker-restart test: a batch's commit blocked through the outage, the
    # worker rejoined meanwhile, and the delivery then went on: it recorded its read offset
    # after the assignment had reset it, and the new generation skipped the records below.
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()  # not started here: its loop would be left open
    tp = TP(TOPIC, 2)
    fetched_at = consumer._rebalances
    delivered: list[Any] = []

    class Channel:
        class queue:  # the attribute Faust's channels have
            @staticmethod
            async def put(event: Any) -> None:
                delivered.append(event)

    async def commit_during_which_the_group_rebalances() -> None:
        await consumer.on_partitions_assigned(set())  # the rejoin completes

    consumer._maybe_commit = commit_during_which_the_group_rebalances
    consumer.flow_active = True
    assert consumer._still_in(fetched_at)
    records = [
        ConsumerRecord(TOPIC, 2, offset, 0, 0, None, b"{}", None, 0, 2, ()) for offset in range(3)
    ]
    await consumer._deliver_batch(tp, records, {Channel()}, fetched_at)
    assert delivered == []
    assert consumer._read_offset.get(tp) is None


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, topic: str, key: Any, value: bytes, *args: Any, **kwargs: Any) -> None:
        self.sent.append(value)


class Assignments:
    """The consumer as `batching.generation` sees it: its rebalance and assignment counts."""

    _rebalances = 0
    _assignments = 0


def stamped(partition: int, offset: int, generation: int) -> RawBatch:
    return RawBatch(TOPIC, partition, batch(partition, offset).records, generation=generation)


async def test_a_batch_delivered_before_an_assignment_is_neither_started_nor_sent(
    app: BatchingApp,
) -> None:
    # A batch abandoned by a rejoin (its transaction lost) must not go on once the partitions
    # are assigned again: its sends would land in the new generation's open transaction, to
    # be committed with offsets they do not belong to, and its failure would rejoin again.
    consumer = Assignments()
    app._consumer = consumer  # type: ignore[assignment]
    producer = RecordingProducer()
    app._producer = producer  # type: ignore[assignment]
    outputs = BatchOutputs(app)
    handled: list[int] = []

    async def handle(item: RawBatch) -> None:
        await outputs.send((TOPIC, item.partition), "p.audit", b"k", b"first")
        consumer._assignments += 1  # the rejoin completes while the batch runs
        await outputs.send((TOPIC, item.partition), "p.audit", b"k", b"second")
        handled.append(item.records[0].offset)

    batches = stream(stamped(0, 0, generation=0), stamped(0, 1, generation=0))
    await run_batches(app, batches, handle)  # type: ignore[arg-type]
    assert producer.sent == [b"first"]  # nothing after the assignment
    assert handled == []
    assert batches.left_unacked() == [0, 1]  # both read again, the second never started
    assert not app.migration.commits_blocked  # no second rejoin for a stale batch

    async def handle_again(item: RawBatch) -> None:
        handled.append(item.records[0].offset)

    fresh = stream(stamped(0, 1, generation=1))
    await run_batches(app, fresh, handle_again)  # type: ignore[arg-type]
    assert handled == [1]


async def test_a_revocation_alone_lets_the_batch_in_flight_finish(app: BatchingApp) -> None:
    # Faust's revocation waits for the batches in flight and commits them with their
    # outputs: refusing their sends then would commit half a batch.
    consumer = Assignments()
    app._consumer = consumer  # type: ignore[assignment]
    app._producer = RecordingProducer()  # type: ignore[assignment]
    outputs = BatchOutputs(app)

    async def handle(item: RawBatch) -> None:
        consumer._rebalances += 1  # the revocation starts, and waits for this batch
        await outputs.send((TOPIC, item.partition), "p.audit", b"k", b"v")

    batches = stream(stamped(0, 0, generation=0))
    await run_batches(app, batches, handle)  # type: ignore[arg-type]
    assert app.producer.sent == [b"v"]  # type: ignore[attr-defined]
    assert batches.left_unacked() == []


async def test_a_failed_delivery_in_a_transaction_is_not_logged_as_never_retrieved(
    app: BatchingApp,
) -> None:
    # Fencing fails every record in flight; the commit reports it, and each record's own
    # future must not add an ERROR line of its own ("Future exception was never retrieved").
    loop = asyncio.get_running_loop()
    deliveries: list[asyncio.Future[Any]] = []

    class InFlight:
        async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            delivery = loop.create_future()
            deliveries.append(delivery)
            return delivery

    app._producer = InFlight()  # type: ignore[assignment]
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        await BatchOutputs(app).send((TOPIC, 0), "p.audit", b"k", b"v")
        deliveries[0].set_exception(ProducerFenced())
        await asyncio.sleep(0)  # the done callbacks run
        deliveries.clear()
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
