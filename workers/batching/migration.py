"""A lost transaction means lost partitions: give them up and rejoin, never crash (DESIGN §10).

Kafka Streams calls it TaskMigratedException. A transactional producer is fenced when another
member initialised the same transactional id — the group moved the partition while this worker
was paused (GC, CPU starvation, SIGSTOP) or cut off — and a transaction the broker aborted after
`transaction_timeout_ms` fails the same way. Either way the batch in flight and everything this
worker holds in memory for those partitions may be behind or ahead of what is committed. Stock
Faust crashes the worker (`app.crash`): under load both members of a group can end up doing so.

Here the worker instead, at the first failure (`PartitionMigration.lost`):

1. stops committing anything (`commits_blocked`): offsets acked after the failure belong to
   batches whose outputs may be gone, and with at-least-once processing a commit of them would
   lose input;
2. drops the producers that cannot go on (fenced, failed or out of a transaction): nothing is
   ever sent outside a transaction, and the broker aborts what they left open when the next
   owner initialises the id;
3. asks the consumer to rejoin the group. aiokafka's eager protocol revokes every partition
   first: the revocation aborts the transactions still open and the worker forgets the
   partitions' state (`workers.app`), and whatever it is assigned next is read again from the
   committed offsets, with fresh producers (Faust begins a transaction per assigned id).

Commits resume with the first assignment after a revocation that followed the loss
(`on_revoked`, `on_assigned`): a lone member's rejoin keeps its generation number, so the
generation cannot tell. The batch that failed, and any delivered before the rejoin, are never
acked (`batching.runner`), and a dropped producer is stopped only once no batch is using it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.types import AppT

from workers.batching.gate import CommitGate
from workers.errors import GuardstreamError

log = logging.getLogger(__name__)

# How long stopping a dropped producer may take: a fenced one has nothing left to flush, but a
# producer cut off from its broker would otherwise wait out its whole request timeout here.
_PRODUCER_STOP_TIMEOUT_S = 5.0
# A rejoin request can be overtaken by a rebalance already under way (aiokafka resets the
# request when it syncs); commits blocked this long ask again rather than wait forever.
REJOIN_RETRY_S = 10.0


class TransactionLost(GuardstreamError):
    """A batch's transaction can no longer commit; its partitions are this worker's no more."""

    def __init__(self, transactional_id: str | None, cause: BaseException) -> None:
        self.transactional_id = transactional_id
        self.cause = cause
        super().__init__(f"transaction {transactional_id or '(commit)'} lost: {cause!r}")


class PartitionMigration:
    def __init__(self, app: AppT) -> None:
        self._app = app
        self.commits_blocked = False
        self._revoked_since_loss = False
        self.migrations = 0
        """How many times this worker gave its partitions up after a lost transaction."""
        self._rejoin_requested_at = 0.0
        self._stopping: set[asyncio.Future[None]] = set()

    async def lost(self, cause: BaseException, transactional_id: str | None = None) -> None:
        """React to a transaction that failed (`transactional_id` None: a commit, which may
        span several). Idempotent until the group has assigned partitions again."""
        self._revoked_since_loss = False
        if not self.commits_blocked:
            self.commits_blocked = True
            self.migrations += 1
            log.warning(
                "transaction %s lost (%r): giving up this worker's partitions and rejoining "
                "the group; they are processed again from their committed offsets",
                transactional_id or "commit",
                cause,
            )
        await self._drop_producers(transactional_id)
        self._request_rejoin()

    def check_blocked(self) -> bool:
        """Whether commits are blocked; asks for the rejoin again when it is overdue (called
        on every commit attempt)."""
        if self.commits_blocked and time.monotonic() - self._rejoin_requested_at > REJOIN_RETRY_S:
            log.warning("still no new assignment after a lost transaction: asking to rejoin again")
            self._request_rejoin()
        return self.commits_blocked

    def on_revoked(self) -> None:
        """A revocation finished: the agents are idle and the partitions' state forgotten."""
        self._revoked_since_loss = True

    def on_assigned(self) -> None:
        """A new assignment is in place. Commits resume only if a revocation came between the
        loss and it (a rejoin can end in the same generation: a lone member's rejoin does; a
        loss during an assignment still waits for the rejoin it asked for)."""
        if self.commits_blocked and self._revoked_since_loss:
            log.info("partitions assigned after a lost transaction: committing again")
            self.commits_blocked = False

    async def drop_producer(self, transactional_id: str) -> None:
        """Throw away one transactional producer (an abort that cannot finish): the broker
        aborts its open transaction when the id's next owner initialises it."""
        await self._drop_producers(transactional_id)

    async def _drop_producers(self, transactional_id: str | None) -> None:
        producer: Any = self._app.producer
        transactions: dict[str, Any] = getattr(producer, "_transaction_producers", {})
        doomed = [
            tid
            for tid, transaction in transactions.items()
            if tid == transactional_id or not _can_continue(transaction)
        ]
        for tid in doomed:
            transaction = transactions.pop(tid, None)
            if transaction is not None:
                self._retire(tid, transaction)

    def _retire(self, tid: str, transaction: Any) -> None:
        """Stop a dropped producer once no batch is using it. Stopped under an agent's feet,
        a send waiting for metadata on its closed client never returned (seen: the agent hung
        and with it the rebalance waiting for the agent)."""
        task = asyncio.ensure_future(self._stop_when_idle(tid, transaction))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop_when_idle(self, tid: str, transaction: Any) -> None:
        gate: CommitGate = self._app.commit_gate  # type: ignore[attr-defined]  # BatchingApp's
        try:
            async with gate.commit():  # no batch in progress, none starts meanwhile
                await asyncio.wait_for(transaction.stop(), _PRODUCER_STOP_TIMEOUT_S)
        except Exception as exc:  # it is being thrown away; the broker aborts its work
            log.info("stopping the producer of %s: %r", tid, exc)

    async def retired(self) -> None:
        """Wait until every dropped producer is stopped (shutdown, tests)."""
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def _request_rejoin(self) -> None:
        consumer: Any = self._app.consumer if self._app.started else None
        thread = getattr(consumer, "_thread", None)
        client = getattr(thread, "_consumer", None)
        coordinator = getattr(client, "_coordinator", None)
        if coordinator is None or thread is None:
            return  # not consuming (yet): nothing to give up
        # The aiokafka consumer lives on the consumer thread's loop.
        thread.thread_loop.call_soon_threadsafe(coordinator.request_rejoin)
        self._rejoin_requested_at = time.monotonic()


def _can_continue(transaction: Any) -> bool:
    """Whether an aiokafka transactional producer can still commit what it holds."""
    manager = getattr(transaction, "_txn_manager", None)
    if manager is None:
        return True
    return not manager.is_fatal_error() and manager.is_in_transaction()


def migration_of(app: AppT) -> PartitionMigration:
    migration: PartitionMigration = app.migration  # type: ignore[attr-defined]  # BatchingApp's
    return migration


__all__ = ["PartitionMigration", "TransactionLost", "migration_of"]
