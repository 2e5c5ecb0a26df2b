"""Routed SLO measurements (topic `slo-counts`, keyed by SLO tracker key) -- DESIGN §11.

The input partitions route each event to the SLOs, objectives and SLA contracts it counts for
and send the counts here, keyed by tracker key, so every event of one SLO (a global one
included) is counted by one consumer while routing stays spread over the input partitions.
One record carries a batch's measurements for one key summed per second, as compact rows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import KeyedRecord, WireModel
from schemas.types import Attributes, Identifier, ShortStr

MAX_ROWS = 2000
"""Rows per record: a global SLO in a 10,000-event batch is sent as several records."""


class SketchBins(WireModel):
    """A quantile sketch's content (workers.kernels.sketch.QuantileSketch, 1 % relative
    accuracy): the count per logarithmic bucket, the zero bucket, the exact min and max."""

    bins: list[tuple[int, Annotated[int, Field(ge=1)]]] = Field(max_length=4096)
    zero_count: int = Field(default=0, ge=0)
    min: float
    max: float


SloRow = tuple[
    Annotated[int, Field(ge=0)],  # the second, epoch ms
    Annotated[int, Field(ge=0)],  # valid events
    Annotated[int, Field(ge=0)],  # good events
    float,  # sum of the values (attribute means)
    Annotated[int, Field(ge=0)],  # number of values
    SketchBins | None,  # values of quantile metrics
    Identifier,  # the last event's id (evidence)
]


class SloCounts(KeyedRecord):
    """Measurements for one tracker key from one batch of one input partition."""

    type: Literal["slo_counts"] = "slo_counts"
    key: Identifier
    """The tracker key ("slo:<id>", "objective:<id>" or "sla:<id>", plus "/<label values>")."""
    target_kind: Literal["slo", "objective", "sla"]
    target_id: Identifier
    labels: Attributes = Field(default_factory=dict)
    rows: list[SloRow] = Field(min_length=1, max_length=MAX_ROWS)
    source_topic: ShortStr
    source_partition: int = Field(ge=0)
