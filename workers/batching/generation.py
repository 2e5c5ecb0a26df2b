"""Which rebalance a batch belongs to, and refusing what a stale one would still do.

A batch is delivered under one assignment (`BatchingConsumer._assignments`, a count: a lone
member's rejoin can keep the group's generation number). A revocation waits for the batches
in flight and commits them; a batch still running once the next assignment has come was
abandoned by it (its transaction lost, `runner._leave_unacked`) and is not this worker's to
finish: whoever owns its partition now (this worker too, after a rejoin) reads it again from
the committed offset. So a stale batch is not started, and one already running sends nothing
more: `BatchOutputs.send` checks before every output, because a send resolves its producer
by transactional id when it is made and would otherwise land in the new generation's open
transaction, to be committed with offsets it does not belong to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from workers.errors import GuardstreamError

_processing: ContextVar[int | None] = ContextVar("guardstream_batch_generation", default=None)


class StaleBatch(GuardstreamError):
    """The batch being processed was delivered before a rebalance that has happened since."""


def current_generation(app: Any) -> int | None:
    """The consumer's assignment count (None before the app has a consumer)."""
    consumer = getattr(app, "_consumer", None)  # the `consumer` property would build one
    return getattr(consumer, "_assignments", None)


def is_stale(app: Any, generation: int | None) -> bool:
    now = current_generation(app)
    return generation is not None and now is not None and now != generation


@contextmanager
def processing(generation: int | None) -> Iterator[None]:
    """Mark the batch of `generation` as the one whose outputs this task sends."""
    token = _processing.set(generation)
    try:
        yield
    finally:
        _processing.reset(token)


def ensure_current(app: Any) -> None:
    """StaleBatch if the batch this task is processing belongs to an earlier generation."""
    if is_stale(app, _processing.get()):
        raise StaleBatch("a rebalance happened since the batch was delivered")
