"""Budget records on the wire: routed spend in and out of `budget-spend`, and `budget-state`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

from schemas.budget_spend import MAX_SLICES, BudgetSpend, SpendRow
from schemas.events import CostEvent, ToolInvocation
from schemas.state import BudgetState
from schemas.stream import StreamEvent
from schemas.types import epoch_ms, from_epoch_ms
from workers.budgets.routing import Spend, route
from workers.kernels.budget import BudgetLedger
from workers.kernels.budget_config import BudgetConfig
from workers.kernels.rolling_sum import from_nanos
from workers.policies.budgets import BudgetPolicy
from workers.routed.counting import RoutedBatch, in_slices


class _Second:
    """One key's spend in one second of one batch, summed (mutable while a batch is routed)."""

    __slots__ = ("event_id", "largest", "nanos", "requests", "tokens")

    def __init__(self, spend: Spend) -> None:
        self.nanos, self.tokens, self.requests = spend.nanos, spend.tokens, spend.requests
        self.event_id, self.largest = spend.event_id, spend.largest_nanos

    def add(self, spend: Spend) -> None:
        self.nanos += spend.nanos
        self.tokens += spend.tokens
        self.requests += spend.requests
        self.event_id = spend.event_id
        self.largest = max(self.largest, spend.largest_nanos)


def spend_records(
    spends: Iterable[Spend], *, source_topic: str, source_partition: int
) -> list[BudgetSpend]:
    """One record per budget key (more past MAX_SLICES rows): the source's spend summed per
    second (spends arrive at 1-second resolution), rows in the order the seconds first came."""
    keys: dict[str, dict[int, _Second]] = {}
    budget_ids: dict[str, str] = {}
    for spend in spends:
        seconds = keys.get(spend.key)
        if seconds is None:
            seconds = keys[spend.key] = {}
            budget_ids[spend.key] = spend.config.budget_id
        second = seconds.get(spend.ts_ms)
        if second is None:
            seconds[spend.ts_ms] = _Second(spend)
        else:
            second.add(spend)
    records: list[BudgetSpend] = []
    for key, seconds in keys.items():
        rows: list[SpendRow] = [
            (ts_ms, s.nanos, s.tokens, s.requests, s.event_id, s.largest)
            for ts_ms, s in seconds.items()
        ]
        records.extend(
            BudgetSpend(
                key=key,
                budget_id=budget_ids[key],
                rows=part,
                source_topic=source_topic,
                source_partition=source_partition,
            )
            for part in in_slices(rows, MAX_SLICES)
        )
    return records


def route_batch(
    policy: BudgetPolicy, events: Iterable[StreamEvent], *, source_topic: str, source_partition: int
) -> RoutedBatch:
    """Route one input batch's events to their budgets and sum them per key and second; one
    pass: each event's time is converted once, for its spend and the watermark."""
    spends: list[Spend] = []
    reached = -1
    for event in events:
        event_ms = epoch_ms(event.ts)
        reached = max(reached, event_ms)
        if type(event) is ToolInvocation or type(event) is CostEvent:
            spends += route(policy, event, event_ms)
    records = spend_records(spends, source_topic=source_topic, source_partition=source_partition)
    return RoutedBatch(records, reached, len(spends))


def spends_of(record: BudgetSpend, budgets: Mapping[str, BudgetConfig]) -> list[Spend]:
    """The record's spends under the current policy; none when its budget no longer exists
    (the policy changed between routing and counting: the spend has no budget to count in)."""
    config = budgets.get(record.budget_id)
    if config is None:
        return []
    return [
        Spend(record.key, config, ts_ms, nanos, tokens, requests, event_id, largest)
        for ts_ms, nanos, tokens, requests, event_id, largest in record.rows
    ]


def budget_state(ledger: BudgetLedger, policy_version: str) -> BudgetState | None:
    """The `budget-state` record of a ledger (None before it saw any event time)."""
    period = ledger.period
    watermark = ledger.watermark_ms
    if period is None or watermark is None:
        return None
    config = ledger.config
    spent = from_nanos(ledger.spent_nanos)
    elapsed = max(watermark + 1 - period.start_ms, 1)
    projected = Fraction(ledger.spent_nanos * period.duration_ms, elapsed)
    limit = config.limit_usd
    requests, tokens = ledger.rate_requests, ledger.rate_tokens
    resets = [r.capacity_returns_at() for r in (requests, tokens) if r is not None]
    reset_at = min((ms for ms in resets if ms is not None), default=None)
    return BudgetState(
        budget_id=config.budget_id,
        scope=scope_of(ledger),
        period=config.period,
        period_start=from_epoch_ms(period.start_ms),
        period_end=from_epoch_ms(period.end_ms),
        spent_usd=spent,
        tokens=ledger.tokens,
        limit_usd=limit,
        limit_tokens=config.limit_tokens,
        remaining_usd=None if limit is None else limit - spent,
        utilization=float(ledger.utilization()),
        projected_spend_usd=from_nanos(int(projected)),
        thresholds_crossed=[_number(percent) for percent in ledger.crossed],
        action=ledger.action,
        decided_by=ledger.decided_by,
        rate_window_ms=config.rate_limits.window_ms if config.rate_limits else None,
        request_rate_limit=requests.limit if requests else None,
        requests_remaining=requests.remaining() if requests else None,
        token_rate_limit=tokens.limit if tokens else None,
        tokens_remaining=tokens.remaining() if tokens else None,
        rate_limit_reset_at=None if reset_at is None else from_epoch_ms(reset_at),
        policy_version=policy_version,
        updated_at=from_epoch_ms(watermark),
    )


def scope_of(ledger: BudgetLedger) -> dict[str, str]:
    """The budget's scope, with a split budget's own values: {"team": "research", "user": "ana"}
    for the key "bud.research.user/ana" (split by user)."""
    config = ledger.config
    scope = dict(config.scope)
    if config.split_by:
        values = ledger.key[len(config.budget_id) + 1 :].split("/", len(config.split_by) - 1)
        scope.update(zip(config.split_by, values, strict=False))
    return scope


def state_topic_key(ledger: BudgetLedger) -> str:
    """`budget-state` is keyed by budget key and period, so compaction keeps each period's
    final state as well as the current one."""
    period = ledger.period
    label = "none" if period is None else period.label
    return f"{ledger.key}@{label}"


def _number(percent: Decimal) -> int | float:
    """A threshold as the seeds write it: 95, or 99.5."""
    return int(percent) if percent == percent.to_integral_value() else float(percent)
