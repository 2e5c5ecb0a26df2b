"""Routed spend (topic `budget-spend`, keyed by budget state key) — DESIGN §11.

The input partitions route each event to the budgets it matches and send the spend here,
keyed by budget key, so every event of one budget (a global one included) is counted by one
consumer while routing stays spread over the input partitions. One record carries a batch's
spend for one key summed per second (budgets count at 1-second resolution), as compact rows.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.base import KeyedRecord
from schemas.types import Identifier, ShortStr

MAX_SLICES = 2000
"""Rows per record: a global budget in a 10,000-event batch is sent as several records."""

SpendRow = tuple[
    Annotated[int, Field(ge=0)],  # event time, epoch ms, to the second
    Annotated[int, Field(ge=0)],  # nano-dollars, summed over the second
    Annotated[int, Field(ge=0)],  # tokens
    Annotated[int, Field(ge=0)],  # requests
    Identifier,  # the last event's id (evidence)
    Annotated[int, Field(ge=0)],  # the largest single event's nano-dollars (approval limit)
]


class BudgetSpend(KeyedRecord):
    """Spend of one budget key from one batch of one input partition."""

    key: Identifier
    """The budget state key ("<budget_id>" or "<budget_id>/<split values>"); the Kafka key."""
    budget_id: Identifier
    rows: list[SpendRow] = Field(min_length=1, max_length=MAX_SLICES)
    """(second, nanos, tokens, requests, last event_id, largest event nanos) per second in
    which the source saw spend for this key: pre-aggregated at the source (DESIGN §11)."""
    source_topic: ShortStr
    source_partition: int = Field(ge=0)
