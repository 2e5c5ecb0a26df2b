"""The commit gate (workers.batching.gate): a commit never lands inside a batch."""

from __future__ import annotations

import asyncio

from workers.batching.gate import CommitGate


async def test_a_commit_waits_for_the_batch_in_progress() -> None:
    gate = CommitGate()
    events: list[str] = []
    halfway = asyncio.Event()

    async def batch() -> None:
        async with gate.batch():
            events.append("first send")
            halfway.set()
            await asyncio.sleep(0.05)  # a send awaiting buffer space, a restore, ...
            events.append("last send")

    async def commit() -> None:
        await halfway.wait()
        async with gate.commit():
            events.append("commit")

    await asyncio.gather(batch(), commit())
    assert events == ["first send", "last send", "commit"]
    assert gate.idle


async def test_a_waiting_commit_holds_back_new_batches() -> None:
    """Writer preference: a busy stream cannot starve commits."""
    gate = CommitGate()
    events: list[str] = []
    first_started = asyncio.Event()
    commit_waiting = asyncio.Event()

    async def first_batch() -> None:
        async with gate.batch():
            first_started.set()
            await commit_waiting.wait()
            await asyncio.sleep(0.01)
            events.append("first batch done")

    async def commit() -> None:
        await first_started.wait()
        task = asyncio.ensure_future(_commit(gate, events))
        await asyncio.sleep(0)  # the commit now waits for the first batch
        commit_waiting.set()
        await task

    async def second_batch() -> None:
        await commit_waiting.wait()
        async with gate.batch():
            events.append("second batch")

    await asyncio.gather(first_batch(), commit(), second_batch())
    assert events == ["first batch done", "commit", "second batch"]
    assert gate.idle


async def _commit(gate: CommitGate, events: list[str]) -> None:
    async with gate.commit():
        events.append("commit")


async def test_batches_run_together_and_a_failed_batch_releases_the_gate() -> None:
    gate = CommitGate()
    together = asyncio.Barrier(2)

    async def batch(fail: bool) -> None:
        async with gate.batch():
            await together.wait()  # both inside at once, or this never returns
            if fail:
                raise RuntimeError("agent crashed mid-batch")

    results = await asyncio.wait_for(
        asyncio.gather(batch(False), batch(True), return_exceptions=True), timeout=5
    )
    assert isinstance(results[1], RuntimeError)
    async with asyncio.timeout(5):
        async with gate.commit():
            pass
    assert gate.idle


async def test_a_cancelled_commit_lets_batches_go_on() -> None:
    gate = CommitGate()
    in_batch = asyncio.Event()
    release = asyncio.Event()

    async def long_batch() -> None:
        async with gate.batch():
            in_batch.set()
            await release.wait()

    running = asyncio.ensure_future(long_batch())
    await in_batch.wait()
    waiting_commit = asyncio.ensure_future(_commit(gate, []))
    await asyncio.sleep(0.01)
    waiting_commit.cancel()
    await asyncio.gather(waiting_commit, return_exceptions=True)
    async with asyncio.timeout(5):
        async with gate.batch():  # not held back by a commit that gave up
            pass
    release.set()
    await running
    assert gate.idle
