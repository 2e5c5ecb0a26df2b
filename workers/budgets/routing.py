"""Which budgets an event counts against, and how much: the first half of the budget path.

Pure. `route` turns one event into `Spend`s, one per matching budget key; the engine feeds
them to ledgers. Kept apart so the live path can route where the events are (each input
partition) and count where the budget lives (DESIGN §11: a budget every event matches must
not funnel all traffic through one partition), while replay does both in one process.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from schemas.events import CostEvent, ToolInvocation
from schemas.types import epoch_ms
from workers.kernels.budget_config import COST_UNIT_TOKENS, BudgetConfig
from workers.kernels.rolling_sum import to_nanos
from workers.policies.budgets import BudgetPolicy

SCOPE_FIELDS = ("vendor", "model", "team", "project", "user", "api_key_id", "org", "environment")
_NANO = Decimal("1e-9")


class Spend(NamedTuple):
    """Spend against one budget key: one event's, or (routed) one second's of one source."""

    key: str
    config: BudgetConfig
    ts_ms: int
    """Event time, to the whole second (budgets count at 1-second resolution, see below)."""
    nanos: int
    tokens: int
    requests: int
    event_id: str
    """The event (the last one, for a second's sum): evidence."""
    largest_nanos: int
    """The largest single event's cost in it (the approval limit is per call)."""


# Every budget boundary is a whole second: calendar periods (zone offsets are whole
# seconds), rate-limit slices (1 s), tripwire intervals, anomaly and rolling windows. Counting
# at that resolution changes no decision, and lets each input partition pre-aggregate a
# second's spend per budget before sending it on (DESIGN §11), in replay and live alike.
RESOLUTION_MS = 1000


def route(
    policy: BudgetPolicy, event: ToolInvocation | CostEvent, event_ms: int | None = None
) -> list[Spend]:
    """`event_ms`: epoch_ms(event.ts), when the caller has it already."""
    fields = attribution(event)
    budgets = policy.matching(fields)
    if not budgets:
        return []
    if event_ms is None:
        event_ms = epoch_ms(event.ts)
    ts_ms = event_ms // RESOLUTION_MS * RESOLUTION_MS
    if isinstance(event, ToolInvocation):
        tokens, requests = event.tokens_in + event.tokens_out, 1
    else:
        tokens, requests = event.tokens or 0, 0
    # Converted once per event; only a call without a cost is priced per budget.
    reported = nanos_of(event.cost_usd)
    spends = []
    for config in budgets:
        nanos = reported or _priced_nanos(event, config, tokens)
        key = config.state_key(fields)
        spends.append(Spend(key, config, ts_ms, nanos, tokens, requests, event.event_id, nanos))
    return spends


def attribution(event: ToolInvocation | CostEvent) -> dict[str, str | None]:
    """The event's values of the fields budget scopes select on."""
    return {name: getattr(event, name, None) for name in SCOPE_FIELDS}


def nanos_of(amount: Decimal) -> int:
    """Nano-dollar resolution: exact for every real price list; finer amounts round half-even."""
    if not amount:
        return 0
    try:
        return to_nanos(amount)  # the common case: at most 9 decimal places, exact
    except ValueError:
        return to_nanos(amount.quantize(_NANO))


def _priced_nanos(event: ToolInvocation | CostEvent, config: BudgetConfig, tokens: int) -> int:
    """A call that reports tokens but no cost, priced by the budget's cost_per_unit for its
    model (USD per COST_UNIT_TOKENS tokens); 0 when there is no price."""
    if not tokens or event.model is None:
        return 0
    price = config.cost_per_unit.get(event.model)
    return 0 if price is None else nanos_of(price * tokens / COST_UNIT_TOKENS)
