"""Policy files: finding, reading and validating them into immutable values (DESIGN §5)."""

from __future__ import annotations

from workers.policies.breakers import (
    MODE_DEFAULTS,
    BreakerPolicy,
    default_breaker_policy,
    load_breaker_policy,
)

__all__ = ["MODE_DEFAULTS", "BreakerPolicy", "default_breaker_policy", "load_breaker_policy"]
