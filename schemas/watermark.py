"""Watermarks on the routed topics (`budget-spend`, `slo-counts`) -- DESIGN §11.

The input partitions pre-aggregate what they route and send it keyed by the state it counts
for; each also tells every partition of the routed topic how far its event time got, so the
counters can count in event-time order (workers.routed.reorder).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import WireModel
from schemas.types import ShortStr


class SourceWatermark(WireModel):
    """An input partition's event time has reached `ts_ms` (sent to every partition of a
    routed topic after each batch, and on each clock tick): the counter releases what was
    routed to it in event-time order up to the lowest watermark of all input partitions."""

    type: Literal["watermark"] = "watermark"
    source_topic: ShortStr
    source_partition: int = Field(ge=0)
    ts_ms: int = Field(ge=0)
