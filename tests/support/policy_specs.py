"""Policy entries, as a policy file holds them, that tests of several modules run."""

from __future__ import annotations

from typing import Any

PER_USER_BUDGET: dict[str, Any] = {
    "scope": {"team": "research", "user": "*"},
    "split_by": ["user"],
    "period": "daily",
    "limit_usd": 30,
    "thresholds": [{"percent": 100, "action": "notify"}],
}
"""bud.user: every research user's own daily budget of $30, notifying at 100 %."""
