"""Control commands (topic `control`, keyed by target) — e.g. the budget tripwire's downgrade."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.base import WireModel
from schemas.types import (
    EventTime,
    Evidence,
    Identifier,
    JsonObject,
    PolicyVersion,
    Text,
)


class ControlKind(StrEnum):
    DOWNGRADE = "downgrade"
    """Switch the target to cheaper settings (the seeds' downgrade_parameters)."""
    RESTORE = "restore"
    """Return to normal after recovery (the seeds' recovery_conditions met)."""
    DEGRADE = "degrade"
    """Shed optional work (SLO degradation strategies)."""
    UNDO = "undo"
    """Revert a previous command, named in parameters["command_id"]."""


class ControlCommand(WireModel):
    """An instruction for the runtimes in `target`'s scope, derived from a kernel decision."""

    command_id: Identifier
    target: Identifier
    """Scope string the command applies to, e.g. "team:search" or "global"; the Kafka key."""
    kind: ControlKind
    parameters: JsonObject = Field(default_factory=dict)
    """Kind-specific values, e.g. {"FUSION_MODE": "baseline_only"} for a downgrade."""
    reason: Text
    ts: EventTime
    """Event time of the decision that produced the command."""
    policy_version: PolicyVersion
    evidence: Evidence = Field(default_factory=list)
