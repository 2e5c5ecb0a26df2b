"""The batching consumer's hand-off when a rebalance clears the agents' queues."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from workers.batching.consumer import _this_task_is_cancelled


async def put_and_report(queue: ThrowableQueue[int]) -> str:
    try:
        await queue.put(2)
    except asyncio.CancelledError:
        return "task cancelled" if _this_task_is_cancelled() else "queue cleared"
    return "delivered"


async def test_a_put_cancelled_by_a_cleared_queue_is_told_apart_from_a_cancelled_task() -> None:
    flow = FlowControlEvent(initially_suspended=False)
    # A Faust channel's queue (faust.channels: app.FlowControlQueue, cleared on resume).
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=1, flow_control=flow, clear_on_resume=True)
    await queue.put(1)  # full: the next put waits, as the drain loop does under backlog
    waiting = asyncio.ensure_future(put_and_report(queue))
    await asyncio.sleep(0.01)
    flow.suspend()
    flow.clear()  # what Faust does to every agent queue when partitions are revoked
    async with asyncio.timeout(5):
        assert await waiting == "queue cleared"

    flow.resume()
    await queue.put(1)
    stopped = asyncio.ensure_future(put_and_report(queue))
    await asyncio.sleep(0.01)
    stopped.cancel()  # the fetcher stopping: the drain loop must not swallow this one
    async with asyncio.timeout(5):
        assert await stopped == "task cancelled"
