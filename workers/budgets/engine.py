"""Routes stream events to budget ledgers and turns their outputs into decisions.

Pure like `BreakerEngine` and driven the same way (`apply(event) -> decisions`), by the agent
and by `guardstream replay`. An event counts against every budget whose scope matches its
attribution fields (one ledger per budget, or per split of it); a clock tick moves time for
every ledger. Decisions: action changes (`transition`, from/to allow|throttle|halt), threshold,
anomaly, rapid-consumption and tripwire alerts (firing, resolved at rollover or recovery), and
tripwire `control` commands.

A budget split by producer fields (`split_by: [user]`) makes a ledger per value, so the
engine holds at most `limit.max_keys` split ledgers (`CappedMap`; the rate limits live in the
ledgers, so this caps rate-limit keys too). Past the cap, a new split key is refused: its
spend counts in the budget's overflow ledger (keyed by the budget id alone, which no split
key can be), one ledger with the split budget's limit for all the refused keys together, so
they are throttled or halted no later than each would be alone; a `cardinality_limit` alert
fires once. Unsplit budgets (their number is the policy's) are never refused.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Unpack

from schemas.alerts import AlertFigures
from schemas.clock import ClockTick
from schemas.control import ControlCommand, ControlKind
from schemas.events import CostEvent, ToolInvocation
from schemas.stream import StreamEvent
from schemas.types import Severity, epoch_ms, from_epoch_ms, rfc3339_ms
from workers.alert_book import AlertBook
from workers.budgets.routing import Spend, route
from workers.cardinality import alarm_decisions
from workers.decisions import (
    ControlDecision,
    Decision,
    Kernel,
    RecordDecision,
    Stamp,
    TransitionDecision,
    stamp,
)
from workers.kernels.budget import BudgetLedger, period_spec
from workers.kernels.budget_config import BudgetConfig
from workers.kernels.budget_outputs import (
    ActionChanged,
    ApprovalExceeded,
    BudgetOutput,
    LateSpend,
    PeriodClosed,
    PeriodRolled,
    ThresholdCrossed,
)
from workers.kernels.budget_tripwire import TripwireRecovered, TripwireTripped
from workers.kernels.key_cap import CappedMap, KeyCaps, KeyLimit, StateKind
from workers.kernels.spend_anomaly import (
    AnomalyEnded,
    AnomalyStarted,
    RapidConsumptionEnded,
    RapidConsumptionStarted,
)
from workers.policies.budgets import BudgetPolicy

THRESHOLD_ALERT = "budget_threshold"
ANOMALY_ALERT = "budget_anomaly"
RAPID_ALERT = "budget_rapid_consumption"
TRIPWIRE_ALERT = "budget_tripwire"
APPROVAL_ALERT = "budget_approval_exceeded"
_USD = Decimal(1_000_000_000)
_OVERFLOW_SUMMARY = (
    "a new split key's spend counts in its budget's overflow ledger (keyed by the budget id)"
)


class BudgetEngine:
    def __init__(self, policy: BudgetPolicy, limit: KeyLimit | None = None) -> None:
        """`limit`: at most this many split ledgers (default: `KeyCaps()`'s)."""
        self.policy = policy
        self.ledgers: CappedMap[BudgetLedger] = CappedMap(
            limit or KeyCaps().whole(StateKind.BUDGETS)
        )
        # One PeriodSpec per budget, shared by its splits: it memoises the current period.
        self._specs = {budget_id: period_spec(c) for budget_id, c in policy.budgets.items()}
        self._alerts = AlertBook(Kernel.BUDGET, policy.version)
        # When each ledger next needs time to pass (see BudgetLedger.due_ms): a clock tick
        # advances only the ledgers due by then, not every one (split budgets make many).
        self._due: list[tuple[int, int, str]] = []  # (due_ms, creation order, key), a heap
        self._due_pushed: dict[str, int] = {}
        self._order: dict[str, int] = {}
        # A ledger not due at a tick catches up before its next spend to the latest tick it
        # missed, so it is exactly where advancing it at every tick would have left it.
        # Ticks are counted; `_tick_maxima` holds (tick number, value) with values strictly
        # falling, so the largest tick from number n on is the first entry at or after n
        # (one entry while ticks only rise, as they do live).
        self._ticks = 0
        self._tick_maxima: list[tuple[int, int]] = []
        self._caught: dict[str, int] = {}  # key -> ticks it has seen (advanced or born after)

    def apply(self, event: StreamEvent) -> list[Decision]:
        if isinstance(event, ToolInvocation | CostEvent):
            return self._spend(event)
        if isinstance(event, ClockTick):
            return self.advance(epoch_ms(event.ts), event.event_id)
        return []

    def advance(self, ts_ms: int, event_id: str) -> list[Decision]:
        """Event time reached `ts_ms`: advance the ledgers that are due, in creation order
        (as if every ledger were advanced: the others would not change)."""
        maxima = self._tick_maxima
        while maxima and maxima[-1][1] <= ts_ms:
            maxima.pop()
        maxima.append((self._ticks, ts_ms))
        self._ticks += 1
        due = self._due
        keys: set[str] = set()
        while due and due[0][0] <= ts_ms:
            _, _, key = heapq.heappop(due)
            if self._due_pushed.get(key, ts_ms + 1) <= ts_ms:
                del self._due_pushed[key]
            keys.add(key)
        decisions: list[Decision] = []
        for key in sorted(keys, key=self._order.__getitem__):
            ledger = self.ledgers[key]
            decisions += self._decide(ledger, self._catch_up(ledger), event_id)
            self._schedule(ledger)
        decisions += alarm_decisions(
            self._alerts, self.ledgers, ts_ms, event_id, overflow=_OVERFLOW_SUMMARY
        )
        return decisions

    def _catch_up(self, ledger: BudgetLedger) -> list[BudgetOutput]:
        """Advance `ledger` to the largest tick since it last saw one (if any)."""
        seen = self._caught[ledger.key]
        self._caught[ledger.key] = self._ticks
        if seen >= self._ticks:
            return []
        index = bisect.bisect_left(self._tick_maxima, (seen, -1))
        return ledger.advance(self._tick_maxima[index][1])

    def __iter__(self) -> Iterator[BudgetLedger]:
        return iter(self.ledgers.values())

    # --- spend ---

    def _spend(self, event: ToolInvocation | CostEvent) -> list[Decision]:
        decisions: list[Decision] = []
        for spend in route(self.policy, event):
            decisions += self.record(spend)
        return decisions

    def record(self, spend: Spend) -> list[Decision]:
        """Count one routed spend in its ledger (created on first sight; at the cap, a new
        split key's spend counts in its budget's overflow ledger)."""
        ledger = self.ledgers.get(spend.key)
        refused: list[Decision] = []
        if ledger is None:
            ledger, refused = self._open(spend)
        caught_up = self._catch_up(ledger)  # not due at a tick: moves windows, no output
        outputs = ledger.spend(
            spend.ts_ms, spend.nanos, spend.tokens, spend.requests, spend.largest_nanos
        )
        self._schedule(ledger)
        return refused + self._decide(ledger, caught_up + outputs, spend.event_id)

    def key_of(self, spend: Spend) -> str:
        """The key of the ledger `spend` counts in: its own, or (refused at the cap) its
        budget's overflow ledger's."""
        return spend.key if spend.key in self.ledgers else spend.config.budget_id

    def _open(self, spend: Spend) -> tuple[BudgetLedger, list[Decision]]:
        """The ledger of a key not held: a new one, or the overflow ledger with the cardinality
        alert's decisions when the cap refuses the key."""
        config = spend.config
        key = spend.key
        if not config.split_by:  # one key per budget: bounded by the policy
            return self._new_ledger(key, config, pinned=True), []
        ledger = self.ledgers.admit(key, lambda: self._new_ledger(key, config), spend.ts_ms)
        if ledger is not None:
            return ledger, []
        overflow = self.ledgers.get(config.budget_id)
        if overflow is None:
            overflow = self._new_ledger(config.budget_id, config, pinned=True)
        alarm = alarm_decisions(
            self._alerts, self.ledgers, spend.ts_ms, spend.event_id, overflow=_OVERFLOW_SUMMARY
        )
        return overflow, alarm

    def _new_ledger(self, key: str, config: BudgetConfig, *, pinned: bool = False) -> BudgetLedger:
        ledger = BudgetLedger(config, key, self._specs[config.budget_id])
        if pinned:
            self.ledgers.pin(key, ledger)
        self._order[key] = len(self._order)
        self._caught[key] = self._ticks  # born after every tick so far
        return ledger

    def _schedule(self, ledger: BudgetLedger) -> None:
        """Remember when `ledger` is next due; a new entry only when that time changed, so
        the heap does not grow with every spend."""
        due_ms = ledger.due_ms()
        if due_ms is not None and self._due_pushed.get(ledger.key) != due_ms:
            self._due_pushed[ledger.key] = due_ms
            heapq.heappush(self._due, (due_ms, self._order[ledger.key], ledger.key))

    # --- outputs -> decisions ---

    def _decide(
        self, ledger: BudgetLedger, outputs: list[BudgetOutput], event_id: str
    ) -> list[Decision]:
        decisions: list[Decision] = []
        for output in outputs:
            decisions += self._decision(ledger, output, event_id)
        return decisions

    def _decision(
        self, ledger: BudgetLedger, output: BudgetOutput, event_id: str
    ) -> list[Decision]:
        """What the shell publishes for one of a ledger's outputs (by the output's type)."""
        handle = _OUTPUT_HANDLERS.get(type(output))
        return [] if handle is None else handle(self, ledger, output, event_id)

    def _action_changed(
        self, ledger: BudgetLedger, output: ActionChanged, event_id: str
    ) -> list[Decision]:
        return [
            TransitionDecision(
                **self._stamp(ledger, output.at_ms, event_id),
                from_state=output.from_action.value,
                to_state=output.to_action.value,
                reason=output.decided_by or "within_limits",
                policy_id=ledger.config.budget_id,
                evidence=_evidence(ledger),
            )
        ]

    def _threshold_crossed(
        self, ledger: BudgetLedger, output: ThresholdCrossed, event_id: str
    ) -> list[Decision]:
        threshold = next(t for t in ledger.config.thresholds if t.percent == output.percent)
        labels = {"threshold_percent": _percent(output.percent), "period": output.period_label}
        summary = (
            f"budget {ledger.key} reached {_percent(output.percent)} % of its limit in "
            f"{output.period_label} ({threshold.action.value})"
        )
        fired = self._fire(
            ledger, THRESHOLD_ALERT, labels, threshold.severity, summary, output.at_ms,
            event_id, value=float(ledger.utilization()),
            threshold=float(output.percent) / 100,
            extra={
                "action": threshold.action.value,
                "notify": ",".join(threshold.notify),
                # At the crossing, not when the alert is published (the seeds' actual).
                "spent_usd": _usd(ledger.spent_nanos),
                "action_taken": ledger.action.value,
            },
        )  # fmt: skip
        current = ledger.period
        if current is not None and current.label != output.period_label:
            # Crossed by a late event in the period before, which has rolled over
            # already: reported, and over at once.
            fired += self._resolve(
                ledger, THRESHOLD_ALERT, _slot_label(labels), output.at_ms, event_id
            )
        return fired

    def _period_rolled(
        self, ledger: BudgetLedger, output: PeriodRolled, event_id: str
    ) -> list[Decision]:
        return [
            decision
            for percent in output.crossed
            for decision in self._resolve(
                ledger,
                THRESHOLD_ALERT,
                f"{_percent(percent)}@{output.old_label}",
                output.at_ms,
                event_id,
            )
        ]

    def _spending_started(
        self,
        ledger: BudgetLedger,
        output: AnomalyStarted | RapidConsumptionStarted,
        event_id: str,
    ) -> list[Decision]:
        kind = ANOMALY_ALERT if isinstance(output, AnomalyStarted) else RAPID_ALERT
        return self._fire(
            ledger, kind, {}, Severity.WARNING, f"budget {ledger.key}: {kind}",
            ledger.watermark_ms or 0, event_id,
        )  # fmt: skip

    def _spending_ended(
        self, ledger: BudgetLedger, output: AnomalyEnded | RapidConsumptionEnded, event_id: str
    ) -> list[Decision]:
        kind = ANOMALY_ALERT if isinstance(output, AnomalyEnded) else RAPID_ALERT
        return self._resolve(ledger, kind, "", ledger.watermark_ms or 0, event_id)

    def _approval_exceeded(
        self, ledger: BudgetLedger, output: ApprovalExceeded, event_id: str
    ) -> list[Decision]:
        summary = (
            f"one call in {ledger.key} cost {Decimal(output.nanos) / _USD} USD, above the "
            f"approval limit of {Decimal(output.limit_nanos) / _USD} USD"
        )
        fired = self._fire(
            ledger, APPROVAL_ALERT, {"event_id": event_id}, Severity.CRITICAL, summary,
            output.at_ms, event_id,
        )  # fmt: skip
        # A single call: the condition is over as soon as it is reported.
        return fired + self._resolve(ledger, APPROVAL_ALERT, event_id, output.at_ms, event_id)

    def _period_closed(
        self, ledger: BudgetLedger, output: PeriodClosed, event_id: str
    ) -> list[Decision]:
        return [
            self._record(ledger, output.at_ms, event_id, "period_closed", {
                "period": output.period_label,
                "period_start": rfc3339_ms(output.start_ms),
                "period_end": rfc3339_ms(output.end_ms),
                "spent_usd": _usd(output.spent_nanos),
                "tokens": output.tokens,
                "requests": output.requests,
            })
        ]  # fmt: skip

    def _late_spend(self, ledger: BudgetLedger, output: LateSpend, event_id: str) -> list[Decision]:
        return [
            self._record(ledger, output.at_ms, event_id, "late_spend", {
                "event_ts": rfc3339_ms(output.event_ts_ms),
                "spent_usd": _usd(output.nanos),
                "tokens": output.tokens,
            })
        ]  # fmt: skip

    def _tripwire(
        self, ledger: BudgetLedger, output: TripwireTripped | TripwireRecovered, event_id: str
    ) -> list[Decision]:
        tripped = isinstance(output, TripwireTripped)
        tripwire = ledger.config.tripwire
        assert tripwire is not None
        target = _target(ledger.config)
        kind = ControlKind.DOWNGRADE if tripped else ControlKind.RESTORE
        command = ControlCommand(
            command_id=f"{ledger.key}:{kind.value}:{output.at_ms}",
            target=target,
            kind=kind,
            parameters=dict(output.parameters),
            reason=(
                f"budget tripwire {'tripped' if tripped else 'recovered'}: overspend "
                f"{output.check.overspend_pct:.1f} % over the plan in the interval ending "
                f"{from_epoch_ms(output.check.end_ms).isoformat()}"
            ),
            ts=from_epoch_ms(output.at_ms),
            policy_version=self.policy.version,
            evidence=[event_id],
        )
        decisions: list[Decision] = [
            ControlDecision(**self._stamp(ledger, output.at_ms, event_id), command=command)
        ]
        if tripped:
            decisions += self._fire(
                ledger, TRIPWIRE_ALERT, {}, Severity.CRITICAL,
                f"budget {ledger.key} tripwire: downgrade sent to {target}", output.at_ms,
                event_id, value=output.check.overspend_pct,
                threshold=float(tripwire.breach_threshold_pct),
            )  # fmt: skip
        else:
            decisions += self._resolve(ledger, TRIPWIRE_ALERT, "", output.at_ms, event_id)
        return decisions

    def _stamp(self, ledger: BudgetLedger, at_ms: int, event_id: str) -> Stamp:
        return stamp(Kernel.BUDGET, ledger.key, at_ms, event_id, self.policy.version)

    def _record(
        self, ledger: BudgetLedger, at_ms: int, event_id: str, what: str, facts: dict[str, Any]
    ) -> RecordDecision:
        return RecordDecision(
            **self._stamp(ledger, at_ms, event_id),
            what=what,
            facts={"budget_id": ledger.config.budget_id, **facts},
        )

    # --- the alert lifecycle: fire once, resolve once ---

    def _fire(
        self,
        ledger: BudgetLedger,
        kind: str,
        labels: Mapping[str, str],
        severity: Severity,
        summary: str,
        at_ms: int,
        event_id: str,
        **figures: Unpack[AlertFigures],
    ) -> list[Decision]:
        identity = {"budget_id": ledger.config.budget_id, "budget_key": ledger.key, **labels}
        slot = (ledger.key, kind, _slot_label(labels))
        return list(
            self._alerts.fire(slot, identity, severity, summary, at_ms, event_id, **figures)
        )

    def _resolve(
        self, ledger: BudgetLedger, kind: str, label: str, at_ms: int, event_id: str
    ) -> list[Decision]:
        return list(self._alerts.resolve((ledger.key, kind, label), at_ms, event_id))


def _evidence(ledger: BudgetLedger) -> dict[str, Any]:
    period = ledger.period
    return {
        "spent_usd": format(Decimal(ledger.spent_nanos) / _USD, "f"),
        "tokens": ledger.tokens,
        "utilization": float(ledger.utilization()),
        "period": None if period is None else period.label,
        "thresholds_crossed": [_percent(p) for p in ledger.crossed],
    }


def _usd(nanos: int) -> str:
    return format(Decimal(nanos) / _USD, "f")


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _slot_label(labels: Mapping[str, str]) -> str:
    """What tells two alerts of one kind on one ledger apart (a threshold in a period, an
    event), so each fires once and resolves once."""
    if "threshold_percent" in labels:
        return f"{labels['threshold_percent']}@{labels['period']}"
    return labels.get("event_id", "")


def _target(config: BudgetConfig) -> str:
    """The scope a control command addresses: "global", or "team:search,vendor:openai"."""
    if not config.scope:
        return "global"
    return ",".join(f"{name}:{value}" for name, value in sorted(config.scope.items()))


_OUTPUT_HANDLERS: dict[type[Any], Callable[[BudgetEngine, BudgetLedger, Any, str], list[Decision]]]
_OUTPUT_HANDLERS = {
    ActionChanged: BudgetEngine._action_changed,
    ThresholdCrossed: BudgetEngine._threshold_crossed,
    PeriodRolled: BudgetEngine._period_rolled,
    AnomalyStarted: BudgetEngine._spending_started,
    RapidConsumptionStarted: BudgetEngine._spending_started,
    AnomalyEnded: BudgetEngine._spending_ended,
    RapidConsumptionEnded: BudgetEngine._spending_ended,
    TripwireTripped: BudgetEngine._tripwire,
    TripwireRecovered: BudgetEngine._tripwire,
    ApprovalExceeded: BudgetEngine._approval_exceeded,
    PeriodClosed: BudgetEngine._period_closed,
    LateSpend: BudgetEngine._late_spend,
}
"""A ledger output's type -> how the engine turns it into decisions (`_decision`)."""
