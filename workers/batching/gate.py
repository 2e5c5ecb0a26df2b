"""Commits wait for whole batches (exactly-once processing, DESIGN §10).

A Kafka transaction commits every record sent under its id so far. Faust commits on a timer,
from its own task, so a commit can land while an agent is halfway through a batch — between
two of its sends — and make the first half of the batch's outputs visible without the rest.
After a crash the batch is consumed again (its offsets were not committed): the half already out
is sent a second time, or — where a worker skips input the audit trail already records — the
other half is never sent.

The gate makes a batch and a commit exclusive: agents hold it for a whole batch (any number
at once), a commit waits until none is in progress, and while a commit waits no new batch
starts, so commits are never starved by a busy stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CommitGate:
    def __init__(self) -> None:
        self._in_progress = 0
        self._committing = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Around one batch: everything it sends is in the same commit."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._committing)
            self._in_progress += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_progress -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def commit(self) -> AsyncIterator[None]:
        """Around one commit: no batch is halfway through it."""
        async with self._changed:
            self._committing += 1
            try:
                await self._changed.wait_for(lambda: self._in_progress == 0)
            except BaseException:
                self._committing -= 1
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            async with self._changed:
                self._committing -= 1
                self._changed.notify_all()

    @property
    def idle(self) -> bool:
        """No batch in progress and no commit (for tests and diagnostics)."""
        return self._in_progress == 0 and self._committing == 0
