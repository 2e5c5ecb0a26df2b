"""Waiting that a shutdown cuts short (the long-running CLI processes' loops)."""

from __future__ import annotations

import asyncio


async def stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stopping` is set first; whether it was."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
