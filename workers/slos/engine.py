"""Routes stream events to SLO trackers and turns their outputs into decisions.

Pure like the breaker and budget engines and driven the same way (`apply(event) ->
decisions`), by `guardstream replay`; the live counter feeds routed per-second counts with
`measure` and moves time with `advance`. Trackers count at 1-second resolution and decide
once a second is complete (when event time moves past it), so a decision depends on each
second's totals only, never on batching or on the order of events within a second.

Decisions: burn-rate alerts (one per SLO and severity, `labels.slo`, `labels.severity` page |
ticket, `labels.tier`, both windows' burn rates), objective alerts (warning, critical),
no-data alerts, degradation `control` commands (degrade, and undo on recovery), and audit
records (SLA reports at period close, calendar periods closed, late events).

A target with `group_by` makes a tracker per label set the producers send, so the engine
holds at most `limit.max_keys` such trackers (`CappedMap`). New keys are admitted when their
second completes, in key order, so which keys get the room left does not depend on batching
or arrival order; a second holds at most as many new keys as there is room for (the
smallest), and the traffic of the others counts in the target's overflow tracker (keyed by
the target alone, "slo:<id>", which no grouped key can be; its labels are "~overflow"). The
overflow tracker holds every refused key's events together, so its burn rate alerts when
theirs would. A `cardinality_limit` alert fires once. Targets without `group_by` (their
number is the policy's) are never refused.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from schemas.clock import ClockTick
from schemas.control import ControlCommand, ControlKind
from schemas.events import LatencyEvent, ToolInvocation
from schemas.state import ObjectiveLevel, ObjectiveState, SlaState, SloState
from schemas.stream import StreamEvent
from schemas.types import Severity, epoch_ms, from_epoch_ms
from workers.alert_book import AlertBook
from workers.cardinality import OVERFLOW_LABEL, alarm_decisions
from workers.decisions import ControlDecision, Decision, Kernel, RecordDecision, stamp
from workers.kernels.degradation import DegradationTracker, Degraded, Restored
from workers.kernels.key_cap import CappedMap, KeyCaps, KeyLimit, StateKind
from workers.kernels.objective import LevelChanged, ObjectiveTracker
from workers.kernels.sla import SlaReport, SlaTracker
from workers.kernels.slo import SloTracker
from workers.kernels.slo_config import Notify, SloConfig, window_name
from workers.kernels.slo_outputs import (
    BurnAlertFired,
    BurnAlertResolved,
    LateCounts,
    NoDataFired,
    NoDataResolved,
    SloPeriodClosed,
)
from workers.kernels.slo_targets_config import Level
from workers.policies.slos import SloPolicy
from workers.slos.records import SecondTotals, SloItem
from workers.slos.routing import RESOLUTION_MS, SloRouter, Target, TargetKind, targets_of

BURN_ALERT = "slo_burn_rate"
OBJECTIVE_ALERT = "slo_objective"
NO_DATA_ALERT = "slo_no_data"
_NOTIFY_SEVERITY = {Notify.PAGE: Severity.PAGE, Notify.TICKET: Severity.WARNING}
_LEVEL_SEVERITY = {Level.WARNING: Severity.WARNING, Level.CRITICAL: Severity.CRITICAL}

Tracker = SloTracker | ObjectiveTracker | SlaTracker


_OVERFLOW_SUMMARY = (
    "a new key's measurements count in its target's overflow tracker (keyed by the target)"
)


@dataclass(frozen=True, slots=True)
class TrackerInfo:
    target: Target
    labels: Mapping[str, str]


class _Newcomer:
    """A key new in the second being summed, ordered largest first (heapq is a min-heap):
    the heap's top is the key to give up when a smaller one needs its place."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __lt__(self, other: _Newcomer) -> bool:
        return self.key > other.key


class SloEngine:
    def __init__(self, policy: SloPolicy, limit: KeyLimit | None = None) -> None:
        """`limit`: at most this many trackers of grouped targets (default: `KeyCaps()`'s)."""
        self.policy = policy
        self._slos = {c.slo_id: c for c in policy.slos}
        self._objectives = {o.objective_id: o for o in policy.objectives}
        self._contracts = {c.contract_id: c for c in policy.contracts}
        self.targets: dict[tuple[TargetKind, str], Target] = {}
        for target in targets_of(policy):
            self.targets[(target.kind, target.target_id)] = target
        self.router = SloRouter(tuple(self.targets.values()))
        self.trackers: CappedMap[Tracker] = CappedMap(limit or KeyCaps().whole(StateKind.SLOS))
        self.info: dict[str, TrackerInfo] = {}
        """Trackers' (and the second's new keys') target and labels."""
        self._pending: dict[str, SecondTotals] = {}
        self._newcomers: list[_Newcomer] = []  # the second's pending keys without a tracker
        self._second: int | None = None
        self._alerts = AlertBook(Kernel.SLO, policy.version)
        self._strategies = [DegradationTracker(s) for s in policy.strategies]
        self._commands: dict[str, str] = {}  # strategy id -> its degrade command's id
        self._breached: dict[str, set[str]] = {}  # target id -> tracker keys breached now
        self.touched: set[str] = set()
        """Tracker keys whose state changed since the caller last cleared this."""

    def __len__(self) -> int:
        return len(self.trackers)

    def __bool__(self) -> bool:
        return bool(self.targets)

    # --- driving ---

    def apply(self, event: StreamEvent) -> list[Decision]:
        if type(event) is ToolInvocation or type(event) is LatencyEvent:
            ts_ms = epoch_ms(event.ts)
            event_id = event.event_id
            decisions = self._time(ts_ms, event_id)
            second = ts_ms - ts_ms % RESOLUTION_MS
            # _time left the second being summed (if any yet) at the event's, or later: then
            # the event is late, counted on its own.
            if self._second is not None and second != self._second:
                return decisions + self._late(event, second)
            pending = self._pending
            for measurement, routes in self.router.routes(event).grouped:
                contribution = measurement.measure(event)
                if contribution is None:
                    continue
                valid, good, value = contribution
                for key, target, labels in routes:
                    totals = pending.get(key)
                    if totals is None:
                        if self._second is None:
                            self._second = second
                        totals = self._open(key, target, labels)
                    totals.add(target, valid, good, value, event_id)
            return decisions
        if isinstance(event, ClockTick):
            return self.advance(epoch_ms(event.ts), event.event_id)
        return []

    def _late(self, event: ToolInvocation | LatencyEvent, second: int) -> list[Decision]:
        """An event of a second before the one being summed: counted on its own, per key in
        policy order."""
        decisions: list[Decision] = []
        routes, measured = self.router.match(event)
        for index, key, target, labels in routes:
            contribution = measured[index]
            if contribution is not None:
                self._know(key, target, labels)
                late = SecondTotals()
                late.add(target, *contribution, event.event_id)
                decisions += self._record(key, second, late)
        return decisions

    def _know(self, key: str, target: Target, labels: tuple[str, ...] | Mapping[str, str]) -> None:
        if key not in self.info:
            named = (
                labels if isinstance(labels, Mapping) else zip(target.group_by, labels, strict=True)
            )
            self.info[key] = TrackerInfo(target, dict(named))

    def measure(self, item: SloItem) -> list[Decision]:
        """A second of routed measurements for one tracker key (the live counter's input)."""
        key = item.key
        decisions = self._time(item.ts_ms, item.event_id)
        if self._second is None:
            self._second = item.ts_ms
        if item.ts_ms < self._second:  # an earlier second than the one being summed: late
            self._know(key, item.target, item.labels)
            late = SecondTotals()
            late.merge(item)
            return decisions + self._record(key, item.ts_ms, late)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._open(key, item.target, item.labels)
        pending.merge(item)
        return decisions

    def advance(self, ts_ms: int, event_id: str) -> list[Decision]:
        """Event time reached `ts_ms`: complete the seconds before it, then let time pass for
        every tracker up to the end of the last complete second (alerts resolve and periods
        close with no traffic). Trackers never enter a second that may still get counts."""
        decisions = self._time(ts_ms, event_id)
        horizon = ts_ms - ts_ms % RESOLUTION_MS - 1
        for key, tracker in self.trackers.items():
            outputs = tracker.advance(horizon)
            if outputs:
                decisions += self._decide(key, outputs, event_id)
        decisions += self._degradations(horizon, event_id)
        decisions += alarm_decisions(
            self._alerts, self.trackers, ts_ms, event_id, overflow=_OVERFLOW_SUMMARY
        )
        return decisions

    # --- per-second aggregation ---

    def _open(
        self, key: str, target: Target, labels: tuple[str, ...] | Mapping[str, str]
    ) -> SecondTotals:
        """Where the second's measurements for a key not pending yet go: its own totals, or
        at the cap its target's overflow totals. New keys of a grouped target get a place
        while the second has room for them, the smallest keys first (a smaller newcomer takes
        the place of the largest one, whose totals move to the overflow): at the end of the
        second exactly the smallest new keys fit, however their events arrived."""
        if target.group_by and key not in self.trackers:  # a newcomer: is there room?
            newcomers = self._newcomers
            room = self.trackers.limit.max_keys - self.trackers.admitted
            if len(newcomers) < room:
                heapq.heappush(newcomers, _Newcomer(key))
            elif newcomers and key < newcomers[0].key:
                self._to_overflow(heapq.heapreplace(newcomers, _Newcomer(key)).key)
            else:
                self.trackers.refuse(self._second or 0)
                return self._overflow_totals(target)
        self._know(key, target, labels)
        totals = self._pending[key] = SecondTotals()
        return totals

    def _to_overflow(self, key: str) -> None:
        """A new key gave its place in the second to a smaller one: what it measured so far
        moves to its target's overflow totals."""
        info = self.info.pop(key)
        moved = self._pending.pop(key)
        labels = dict(info.labels)
        self._overflow_totals(info.target).merge(
            SloItem(0, key, info.target, labels, moved.valid, moved.good, moved.value_sum,
                    moved.value_count, moved.sketch, moved.event_id)
        )  # fmt: skip
        self.trackers.refuse(self._second or 0)

    def _overflow_totals(self, target: Target) -> SecondTotals:
        key = self._overflow_key(target)
        totals = self._pending.get(key)
        if totals is None:
            totals = self._pending[key] = SecondTotals()
        return totals

    def _overflow_key(self, target: Target) -> str:
        """The key of `target`'s overflow tracker (the target's key without labels)."""
        key = target.key(())
        if key not in self.info:
            self.info[key] = TrackerInfo(target, dict.fromkeys(target.group_by, OVERFLOW_LABEL))
        return key

    def _time(self, ts_ms: int, event_id: str) -> list[Decision]:
        """Complete the second being summed once event time has left it."""
        second = self._second
        if second is None or ts_ms < second + RESOLUTION_MS:
            return []
        self._second = ts_ms - ts_ms % RESOLUTION_MS
        pending, self._pending = self._pending, {}
        self._newcomers = []
        decisions: list[Decision] = []
        for key in sorted(pending):
            decisions += self._record(key, second, pending[key])
        if pending:
            decisions += self._degradations(second + RESOLUTION_MS - 1, event_id)
        decisions += alarm_decisions(
            self._alerts, self.trackers, second, event_id, overflow=_OVERFLOW_SUMMARY
        )
        return decisions

    def _tracker_of(self, key: str, at_ms: int) -> tuple[str, Tracker]:
        """The tracker of `key` (and its key): created on first sight, or at the cap the
        overflow tracker of its target."""
        tracker = self.trackers.get(key)
        if tracker is not None:
            return key, tracker
        target = self.info[key].target
        if not target.group_by or key == target.key(()):  # bounded by the policy
            return key, self.trackers.pin(key, self._tracker(target))
        tracker = self.trackers.admit(key, lambda: self._tracker(target), at_ms)
        if tracker is not None:
            return key, tracker
        if key not in self._pending:  # refused: nothing of the key is kept (once it is
            del self.info[key]  # not waiting for its second to complete, after a late event)
        overflow = self._overflow_key(target)
        return self._tracker_of(overflow, at_ms)

    def _record(self, key: str, second_ms: int, totals: SecondTotals) -> list[Decision]:
        key, tracker = self._tracker_of(key, second_ms)
        valid, good, sketch = totals.valid, totals.good, totals.sketch
        outputs: Sequence[Any]
        if isinstance(tracker, SloTracker):
            outputs = tracker.record(second_ms, good, valid)
        elif isinstance(tracker, ObjectiveTracker):
            outputs = tracker.record(
                second_ms,
                valid=valid,
                good=good,
                sketch=sketch,
                value_sum=totals.value_sum,
                value_count=totals.value_count,
            )
        else:
            outputs = tracker.record(second_ms, valid=valid, good=good, sketch=sketch)
        self.touched.add(key)
        return self._decide(key, outputs, totals.event_id) if outputs else []

    def _tracker(self, target: Target) -> Tracker:
        if target.kind is TargetKind.SLO:
            return SloTracker(self._slos[target.target_id])
        if target.kind is TargetKind.OBJECTIVE:
            return ObjectiveTracker(self._objectives[target.target_id])
        return SlaTracker(self._contracts[target.target_id])

    # --- outputs to decisions ---

    def _decide(self, key: str, outputs: Sequence[Any], event_id: str) -> list[Decision]:
        decisions: list[Decision] = []
        self.touched.add(key)
        for output in outputs:
            if isinstance(output, BurnAlertFired | BurnAlertResolved):
                decisions += self._burn_alert(key, output, event_id)
            elif isinstance(output, LevelChanged):
                decisions += self._level_alert(key, output, event_id)
            elif isinstance(output, NoDataFired):
                decisions += self._alerts.fire(
                    (key, NO_DATA_ALERT, ""),
                    self._identity(key),
                    Severity.WARNING,
                    f"SLO {self.info[key].target.target_id}: no data since "
                    + (
                        "the start"
                        if output.last_event_ms is None
                        else str(from_epoch_ms(output.last_event_ms))
                    ),
                    output.ts_ms,
                    event_id,
                )
            elif isinstance(output, NoDataResolved):
                decisions += self._alerts.resolve((key, NO_DATA_ALERT, ""), output.ts_ms, event_id)
            elif isinstance(output, SlaReport):
                decisions.append(self._sla_report(key, output, event_id))
            elif isinstance(output, SloPeriodClosed):
                decisions.append(
                    self._record_decision(
                        key,
                        output.ts_ms,
                        event_id,
                        "slo_period_closed",
                        {
                            "period": output.label,
                            "good": output.good,
                            "total": output.valid,
                            "attainment": output.attainment,
                            "met": output.met,
                        },
                    )
                )
            elif isinstance(output, LateCounts):
                decisions.append(
                    self._record_decision(
                        key,
                        output.ts_ms,
                        event_id,
                        "late_events",
                        {"good": output.good, "total": output.valid},
                    )
                )
        return decisions

    def _identity(self, key: str, **more: str) -> dict[str, str]:
        info = self.info[key]
        return {"slo": info.target.target_id, "slo_key": key, **info.labels, **more}

    def _burn_alert(
        self, key: str, output: BurnAlertFired | BurnAlertResolved, event_id: str
    ) -> list[Decision]:
        tier = output.tier
        notify = tier.notify.value
        slot = (key, BURN_ALERT, notify)
        rates = {
            "tier": tier.name,
            "long_window": window_name(tier.long_window_ms),
            "short_window": window_name(tier.short_window_ms),
            "long_burn_rate": f"{output.long_burn:.4f}",
            "short_burn_rate": f"{output.short_burn:.4f}",
        }
        target_id = self.info[key].target.target_id
        if isinstance(output, BurnAlertFired):
            decisions: list[Decision] = list(
                self._alerts.fire(
                    slot,
                    self._identity(key, severity=notify),
                    _NOTIFY_SEVERITY[tier.notify],
                    f"SLO {target_id} burning its error budget at {output.long_burn:.1f}x over "
                    f"{rates['long_window']} and {output.short_burn:.1f}x over "
                    f"{rates['short_window']} (tier {tier.name}, factor {tier.factor:g}); "
                    f"{output.error_budget_remaining:.1%} of the budget left",
                    output.ts_ms,
                    event_id,
                    value=output.long_burn,
                    threshold=tier.factor,
                    extra={
                        **rates,
                        "error_budget_remaining": f"{output.error_budget_remaining:.4f}",
                    },
                )
            )
            if tier.notify is self._breach_notify(target_id):
                decisions += self._breach(target_id, key, True, output.ts_ms, event_id)
        else:
            decisions = list(
                self._alerts.resolve(
                    slot,
                    output.ts_ms,
                    event_id,
                    summary=f"SLO {target_id}: burn rate back under {tier.factor:g}x over "
                    f"{rates['short_window']}; {output.error_budget_remaining:.1%} of the "
                    "budget left",
                    value=output.long_burn,
                    extra={
                        **rates,
                        "error_budget_remaining": f"{output.error_budget_remaining:.4f}",
                    },
                )
            )
            if tier.notify is self._breach_notify(target_id):
                decisions += self._breach(target_id, key, False, output.ts_ms, event_id)
        return decisions

    def _level_alert(self, key: str, output: LevelChanged, event_id: str) -> list[Decision]:
        objective = self._objectives[output.objective_id]
        to = output.to_level
        decisions: list[Decision] = []
        facts = {
            "metric": objective.metric.value,
            "window": window_name(objective.window_ms),
            "value": "none" if output.value is None else f"{output.value:.6g}",
        }
        for level in (Level.CRITICAL, Level.WARNING):
            slot = (key, OBJECTIVE_ALERT, level.value)
            entered = to is Level.CRITICAL or (level is Level.WARNING and to is Level.WARNING)
            threshold = objective.critical_at if level is Level.CRITICAL else objective.warning_at
            if entered:
                decisions += self._alerts.fire(
                    slot,
                    self._identity(key, severity=level.value),
                    _LEVEL_SEVERITY[level],
                    f"objective {objective.objective_id}: {objective.metric.value} "
                    f"{facts['value']} past {threshold:g} over {facts['window']}",
                    output.ts_ms,
                    event_id,
                    value=output.value,
                    threshold=threshold,
                    extra=facts,
                )
            else:
                decisions += self._alerts.resolve(
                    slot, output.ts_ms, event_id, value=output.value, extra=facts
                )
        decisions += self._breach(
            objective.objective_id, key, to is not Level.OK, output.ts_ms, event_id
        )
        return decisions

    def _breach_notify(self, slo_id: str) -> Notify:
        """A burn-rate SLO counts as breached (for degradation strategies) while it pages: a
        ticket is a slow burn that does not warrant shedding work. An SLO whose tiers only
        ticket is breached while it tickets."""
        tiers = self._slos[slo_id].effective_tiers
        return Notify.PAGE if any(t.notify is Notify.PAGE for t in tiers) else Notify.TICKET

    def _breach(
        self, target_id: str, key: str, breached: bool, ts_ms: int, event_id: str
    ) -> list[Decision]:
        """`key` of `target_id` entered or left its breach at `ts_ms`; the target is breached
        while any of its keys is, and the degradation strategies hear of it when that changes."""
        keys = self._breached.setdefault(target_id, set())
        was = bool(keys)
        if breached:
            keys.add(key)
        else:
            keys.discard(key)
        if was == bool(keys):
            return []
        return [
            self._command(output, event_id)
            for tracker in self._strategies
            for output in tracker.observe(target_id, bool(keys), ts_ms)
        ]

    def _degradations(self, ts_ms: int, event_id: str) -> list[Decision]:
        """Time reached `ts_ms`: strategies whose breach lasted long enough degrade."""
        return [
            self._command(output, event_id)
            for tracker in self._strategies
            for output in tracker.advance(ts_ms)
        ]

    def _command(self, output: Degraded | Restored, event_id: str) -> ControlDecision:
        strategy_id = output.strategy_id
        if isinstance(output, Degraded):
            command_id = f"{strategy_id}-{output.ts_ms}-degrade"
            self._commands[strategy_id] = command_id
            kind = ControlKind.DEGRADE
            parameters: dict[str, Any] = dict(output.parameters)
            reason = (
                f"degradation {strategy_id}: {output.objective_id} breached since "
                f"{from_epoch_ms(output.breached_since_ms)}"
            )
        else:
            undone = self._commands.pop(strategy_id, "")
            command_id = f"{strategy_id}-{output.ts_ms}-undo"
            kind = ControlKind.UNDO
            parameters = {"command_id": undone, **output.parameters}
            reason = f"degradation {strategy_id}: its objectives recovered"
        command = ControlCommand(
            command_id=command_id,
            target=output.target,
            kind=kind,
            parameters=parameters,
            reason=reason,
            ts=from_epoch_ms(output.ts_ms),
            policy_version=self.policy.version,
            evidence=[event_id],
        )
        key = f"degradation:{strategy_id}"
        return ControlDecision(
            **stamp(Kernel.SLO, key, output.ts_ms, event_id, self.policy.version), command=command
        )

    def _sla_report(self, key: str, report: SlaReport, event_id: str) -> RecordDecision:
        return self._record_decision(
            key,
            report.period_end_ms,
            event_id,
            "sla_report",
            {
                "contract_id": report.contract_id,
                "tier": report.tier,
                "period": report.period_label,
                "total": report.valid,
                "good": report.good,
                "availability_percent": report.availability_percent,
                "p50_ms": report.p50_ms,
                "p99_ms": report.p99_ms,
                "availability_met": report.availability_met,
                "p50_met": report.p50_met,
                "p99_met": report.p99_met,
                "credit_percent": report.credit_percent,
                "late_events": report.late_events,
            },
        )

    def _record_decision(
        self, key: str, ts_ms: int, event_id: str, what: str, facts: dict[str, Any]
    ) -> RecordDecision:
        return RecordDecision(
            **stamp(Kernel.SLO, key, ts_ms, event_id, self.policy.version),
            what=what,
            facts={"slo": self.info[key].target.target_id, **facts},
        )

    # --- state ---

    def burn_rates(self) -> Iterator[tuple[str, Mapping[str, float], float]]:
        for key, tracker in self.trackers.items():
            if isinstance(tracker, SloTracker):
                snap = tracker.snapshot()
                yield key, snap.burn_rates, snap.error_budget_remaining

    def states(self, keys: Iterable[str] | None = None) -> list[BaseModel]:
        """The state records of `keys` (default: every tracker), in key order."""
        chosen = sorted(self.trackers) if keys is None else sorted(keys)
        return [record for key in chosen if key in self.trackers and (record := self.state(key))]

    def state(self, key: str) -> BaseModel | None:
        tracker = self.trackers[key]
        info = self.info[key]
        version = self.policy.version
        if isinstance(tracker, SloTracker):
            return _slo_state(key, info, tracker, self._slos[info.target.target_id], version)
        if isinstance(tracker, ObjectiveTracker):
            snap = tracker.snapshot()
            if snap.updated_ms is None:
                return None
            objective = self._objectives[info.target.target_id]
            return ObjectiveState(
                slo_id=objective.objective_id,
                key=key,
                labels=dict(info.labels),
                metric=objective.metric.value,
                window_ms=objective.window_ms,
                value=snap.value,
                level=ObjectiveLevel(snap.level.value),
                target=objective.target,
                warning_at=objective.warning_at,
                critical_at=objective.critical_at,
                events_in_window=snap.events_in_window,
                policy_version=version,
                updated_at=from_epoch_ms(snap.updated_ms),
            )
        if tracker.period is None:
            return None
        report = tracker.projection()
        return SlaState(
            slo_id=report.contract_id,
            key=key,
            labels=dict(info.labels),
            tier=report.tier,
            period_start=from_epoch_ms(report.period_start_ms),
            period_end=from_epoch_ms(report.period_end_ms),
            total=report.valid,
            good=report.good,
            availability_percent=report.availability_percent,
            p50_ms=report.p50_ms,
            p99_ms=report.p99_ms,
            credit_percent=report.credit_percent,
            policy_version=version,
            updated_at=from_epoch_ms(max(report.period_start_ms, self._second or 0)),
        )


def _slo_state(
    key: str, info: TrackerInfo, tracker: SloTracker, config: SloConfig, version: str
) -> SloState | None:
    snap = tracker.snapshot()
    if snap.updated_ms is None:
        return None
    return SloState(
        slo_id=config.slo_id,
        key=key,
        labels=dict(info.labels),
        target=config.target,
        period=None if config.period_ms is None else timedelta(milliseconds=config.period_ms),
        period_start=None if snap.period_start_ms is None else from_epoch_ms(snap.period_start_ms),
        period_end=None if snap.period_end_ms is None else from_epoch_ms(snap.period_end_ms),
        good=snap.good,
        total=snap.valid,
        error_budget_remaining=snap.error_budget_remaining,
        burn_rates=dict(snap.burn_rates),
        firing=list(snap.firing),
        alerting=dict(snap.alerting),
        time_to_exhaustion_ms=snap.time_to_exhaustion_ms,
        sla_tier=config.sla_tier,
        policy_version=version,
        updated_at=from_epoch_ms(snap.updated_ms),
    )
