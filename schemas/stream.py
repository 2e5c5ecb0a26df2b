"""What an input partition carries: events, and the records that steer the kernels in order.

Besides the input events, a partition may hold clock ticks (time passes, DESIGN §6) and
breaker overrides (an operator moves a breaker). Both are recognised by their `type` field and
forbid any other field, so a real event can never be taken for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from schemas.clock import CLOCK_TYPE, ClockTick
from schemas.events import InputEvent
from schemas.override import OVERRIDE_TYPE, BreakerOverride

StreamControl = ClockTick | BreakerOverride
StreamEvent = InputEvent | StreamControl

CONTROL_TYPES: Final[Mapping[str, type[StreamControl]]] = MappingProxyType(
    {CLOCK_TYPE: ClockTick, OVERRIDE_TYPE: BreakerOverride}
)
_MARKERS = tuple(f'"{name}"'.encode() for name in CONTROL_TYPES)


def control_type(raw: bytes) -> type[StreamControl] | None:
    """The control record model `raw` is (valid or not), or None for anything else.

    On the hot path: two substring scans rule out an ordinary event before any parsing."""
    if b'"type"' not in raw or not any(marker in raw for marker in _MARKERS):
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    kind = document.get("type")
    return CONTROL_TYPES.get(kind) if isinstance(kind, str) else None
