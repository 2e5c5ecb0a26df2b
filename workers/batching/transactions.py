"""Transactional ids: one per agent subscription and partition (exactly-once processing).

Faust names a transaction `{app id}-{group}-{partition}` where `group` numbers the topics by
their *partition count*: every 4-partition topic — the input topics, `budget-spend`,
`slo-counts` — is group 0. With one worker that only merges transactions; with two, the
worker running the ingest of partition 1 and the worker running the budget counter of
partition 1 both use `…-0-1`, and each start of one fences the other's open transaction
(measured: a forked input chain and aborted outputs after a rebalance).

Here the group is the agent's subscription instead (the first of its topics: the ingest
agent's three input topics are one group, since one chain holds the three partitions N;
each counter's topic is its own), for the outputs (`batching.outputs`) and for Faust's
commits and producer starts alike (`BatchingTransactionManager`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping, Set
from typing import Any

from faust.transport.consumer import TransactionManager
from faust.types import TP, AppT

from workers.batching.gate import CommitGate
from workers.batching.migration import migration_of

# Faust's own abort swallows errors (a fenced producer is dropped there); this bounds the
# wait for a broker that does not answer.
ABORT_TIMEOUT_S = 5.0


def subscription_group(app: AppT, topic: str) -> str:
    """The transaction group of `topic`: the first topic of the agent subscription it is
    in (`BatchTopic` registers them), else the topic itself."""
    groups: Mapping[str, str] = getattr(app, "transaction_groups", {})
    return groups.get(topic, topic)


def transactional_id(app: AppT, topic: str, partition: int) -> str:
    return f"{app.conf.id}-{subscription_group(app, topic)}-{partition}"


class BatchingTransactionManager(TransactionManager):
    """Faust's transaction manager with `transactional_id` naming, aborting at revocation
    what a revocation's commit left open, and giving partitions up instead of crashing when a
    commit fails (`batching.migration`)."""

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """After Faust's revocation commit: abort every transaction still open for the
        revoked partitions. Faust may leave one open with outputs in it (measured: a kept
        partition's input records committed only after the rebalance, next to the same
        inputs processed again from the committed offsets, a forked chain). Aborted, the
        uncommitted outputs go with the uncommitted offsets; the worker forgets the
        partitions' state (`workers.app`) and whoever owns them next processes them again
        from what is committed."""
        await super().on_partitions_revoked(revoked)
        producer: Any = self.producer
        transactions: Mapping[str, Any] = getattr(producer, "_transaction_producers", {})
        # Never halfway through a batch: one still running finishes first (seen without
        # this: a batch sending into a transaction just aborted, which crashed the worker),
        # and none starts until the aborts are done.
        async with _commit_gate(self.app).commit():
            for tid in sorted(self._tps_to_transactional_ids(revoked)):
                transaction = transactions.get(tid)
                manager = getattr(transaction, "_txn_manager", None)
                if manager is not None and manager.is_in_transaction():
                    await self._abort(tid)

    async def _abort(self, tid: str) -> None:
        """Abort `tid`'s open transaction, or throw its producer away when the broker does
        not answer in time (a revocation must finish within the session timeout; the next
        owner's producer aborts the transaction when it initialises the id)."""
        producer: Any = self.producer
        try:
            await asyncio.wait_for(producer.abort_transaction(tid), ABORT_TIMEOUT_S)
        except TimeoutError:
            self.log.warning(
                "aborting %s took over %.0f s: dropping its producer", tid, ABORT_TIMEOUT_S
            )
            await migration_of(self.app).drop_producer(tid)

    def _tps_to_transactional_ids(self, tps: Set[TP]) -> set[str]:
        assignor = self.app.assignor
        return {
            transactional_id(self.app, tp.topic, tp.partition)
            for tp in tps
            if not assignor.is_standby(tp)
        }

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        by_transaction: MutableMapping[str, dict[TP, int]] = {}
        for tp, offset in offsets.items():
            tid = transactional_id(self.app, tp.topic, tp.partition)
            by_transaction.setdefault(tid, {})[tp] = offset
        if not by_transaction:
            return True
        producer: Any = self.producer
        committed = True
        # One transaction at a time, so that a failure names its transactional id: that
        # producer is dropped (a fenced one can look healthy until it is used), and the other
        # transactions, whose batches are whole, still commit.
        for tid, tid_offsets in by_transaction.items():
            try:
                await producer.commit_transactions(
                    {tid: tid_offsets},
                    self.app.conf.id,
                    start_new_transaction=start_new_transaction,
                )
            except Exception as exc:
                # Fenced, timed out, cut off, or no longer in a transaction (aiokafka's
                # IllegalOperation): none of it is this worker's to commit any more.
                await migration_of(self.app).lost(exc, tid)
                committed = False
        return committed


def _commit_gate(app: AppT) -> CommitGate:
    gate: CommitGate = app.commit_gate  # type: ignore[attr-defined]  # BatchingApp's
    return gate
