"""Where the projection lives in Redis: every name under one prefix per deployment."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Surface(StrEnum):
    """A kind of projected state, one per compacted state topic."""

    BREAKER = "breaker"
    BUDGET = "budget"
    SLO = "slo"
    DEPENDENCY = "dependency"


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """`guardstream.` topics project under `guardstream:`: a deployment's topic prefix names
    its Redis keys too, so two deployments (or two tests) can share one Redis."""

    prefix: str

    @classmethod
    def for_topic_prefix(cls, topic_prefix: str) -> RedisLayout:
        return cls(topic_prefix.rstrip(".") + ":")

    def state(self, surface: Surface, key: str) -> str:
        """One key's hash: `<prefix>breaker:openai/chat`."""
        return f"{self.prefix}{surface}:{key}"

    def budget_index(self, attribute: str | None, value: str = "") -> str:
        """The set of budget keys whose scope holds `attribute=value` (None: the budgets
        with an empty scope, which apply to every call)."""
        name = "*" if attribute is None else f"{attribute}={value}"
        return f"{self.prefix}budget-index:{name}"

    @property
    def meta(self) -> str:
        """The projection's own record: its epoch, the offsets projected, the last update."""
        return f"{self.prefix}meta"

    @property
    def changes(self) -> str:
        """The pub/sub channel that names every hash as it changes."""
        return f"{self.prefix}changes"

    @property
    def pattern(self) -> str:
        """Every key of the projection (SCAN MATCH), for a rebuild to delete. Topic prefixes
        hold no glob characters (`Settings` allows [a-zA-Z0-9._-] only)."""
        return self.prefix + "*"
