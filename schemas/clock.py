"""Clock ticks: event time passing with no traffic (DESIGN §6, time-driven transitions).

A tick travels in an input topic's partition like any event, so every consumer of that
partition (the live agents, `replay --source topics`, the forensic audit trail) sees time
pass at the same position in the stream, and time-driven transitions (OPEN -> HALF_OPEN,
period rollover, alert resolution) replay identically. Kernels never read the wall clock.

On the wire: `{"type": "clock", "ts": ..., "event_id": ...}`; nothing else is allowed, so
a tick can never be confused with a real event that happens to carry `"type": "clock"`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError, model_validator

from schemas.base import WIRE_CONFIG, WireModel
from schemas.types import EventTime, Identifier, InputEventTime, epoch_ms, from_epoch_ms

CLOCK_TYPE: Final = "clock"
_EVENT_TIME: Final = TypeAdapter(EventTime, config=WIRE_CONFIG)


def parse_event_time(value: Any) -> int | None:
    """`value` as epoch ms if it is a valid event time, else None (for default ids, which
    must not raise before field validation can report the problem at `ts`)."""
    if value is None:
        return None
    try:
        return epoch_ms(_EVENT_TIME.validate_python(value))
    except ValidationError:
        return None


class ClockTick(WireModel):
    """Event time has reached `ts` in this partition."""

    model_config = ConfigDict(**{**WIRE_CONFIG, "extra": "forbid"})

    type: Literal["clock"] = CLOCK_TYPE
    ts: InputEventTime
    event_id: Identifier
    """Named in decisions a tick causes; defaults to ``clock-<epoch ms>``."""

    @classmethod
    def at(cls, ms: int) -> ClockTick:
        """The tick for Unix millisecond `ms`, with its default id."""
        return cls(ts=from_epoch_ms(ms), event_id=f"clock-{ms}")

    @model_validator(mode="before")
    @classmethod
    def _default_event_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("event_id") is None:
            ms = parse_event_time(data.get("ts"))
            if ms is not None:  # else field validation reports the bad `ts`
                data = {**data, "event_id": f"clock-{ms}"}
        return data
