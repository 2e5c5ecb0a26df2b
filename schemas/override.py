"""Operator overrides of one circuit breaker, carried in the input stream.

An override travels in the `tool-invocations` partition of the breaker it targets (keyed
`vendor/tool`, like the calls), so it takes effect at one position among the calls, is audited
like any transition, and `replay` reproduces it. `guardstream breakers override` sends one.

On the wire: `{"type": "breaker_override", "ts", "vendor", "tool", "action", "event_id"?,
"actor"?, "reason"?}`; nothing else is allowed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import ConfigDict, model_validator

from schemas.base import WIRE_CONFIG, WireModel
from schemas.clock import parse_event_time
from schemas.types import Identifier, InputEventTime, ShortStr, Text

OVERRIDE_TYPE: Final = "breaker_override"


class OverrideAction(StrEnum):
    FORCE_OPEN = "force_open"
    """Reject every call until reset (audited, not alerted: an operator decided it)."""
    DISABLE = "disable"
    """Let every call through and stop evaluating."""
    METRICS_ONLY = "metrics_only"
    """Let every call through, keep the window and rates, never open."""
    RESET = "reset"
    """Back to CLOSED with an empty window, from any state."""


class BreakerOverride(WireModel):
    """Move the breaker of `vendor`/`tool` by hand, at event time `ts`."""

    model_config = ConfigDict(**{**WIRE_CONFIG, "extra": "forbid"})

    type: Literal["breaker_override"] = OVERRIDE_TYPE
    ts: InputEventTime
    vendor: Identifier
    tool: Identifier
    action: OverrideAction
    event_id: Identifier
    """Named in the decision it causes; defaults to ``override-<vendor>/<tool>-<epoch ms>``."""
    actor: ShortStr | None = None
    """Who asked (for the audit trail)."""
    reason: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_event_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("event_id") is None:
            data = {**data, "event_id": _default_id(data)}
        return data


def _default_id(data: dict[str, Any]) -> str | None:
    ms = parse_event_time(data.get("ts"))
    if ms is None:
        return None  # field validation reports the bad `ts`
    return f"override-{data.get('vendor')}/{data.get('tool')}-{ms}"
