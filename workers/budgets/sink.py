"""The budget agents' I/O (DESIGN §11: route where the events are, count where the budget is).

- `BudgetRouterSink` (an ingest sink): each input batch's events are routed to the budgets they
  match (`routing.route`) and sent to `budget-spend`, one record per budget key, keyed by it.
  In production mode the sends are part of the input batch's transaction.
- `register_budget_counter`: an agent on `budget-spend` runs one `BudgetEngine` per partition
  (every spend of a budget key, from every input partition, lands in one) and publishes its
  decisions: `budget-state` for every ledger a batch touched, alerts, control commands and
  hash-chained audit records (`aud.budget.*`, with the seeds' required fields for
  `aud.budget.exceeded`: budget_id, limit, actual, action_taken).

Routed spend is counted in event-time order under the low watermark of the input partitions
(`counting.BudgetCounting`): after each batch the router sends its partition's watermark to
every counter partition, clock ticks included, so periods roll over and alerts resolve with no
traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust

from schemas.codec import encode
from schemas.state import BudgetState
from schemas.types import Severity
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.masking import Masker
from workers.batching import BatchingApp, RawBatch
from workers.budgets.counting import BudgetCounting
from workers.budgets.engine import BudgetEngine
from workers.budgets.records import budget_state, route_batch, state_topic_key
from workers.cardinality import CARDINALITY_AUDIT_TYPE, is_cardinality_alert
from workers.decisions import (
    AlertDecision,
    ControlDecision,
    Decision,
    RecordDecision,
    TransitionDecision,
)
from workers.ingest.stage import IngestResult
from workers.kernels.budget import BudgetLedger
from workers.kernels.key_cap import KeyCaps, StateKind
from workers.kernels.rolling_sum import from_nanos
from workers.policies.audit_event_types import AuditPolicy
from workers.policies.budgets import BudgetPolicy
from workers.recovery import restore_counting
from workers.routed.publisher import DecisionPublisher, register_counter
from workers.routed.sender import RoutedSender

log = logging.getLogger(__name__)


def chain_id(partition: int) -> str:
    return f"budgets-p{partition}"


class BudgetRouterSink:
    """Routes accepted input events to `budget-spend` (an EventSink of the ingest agent)."""

    def __init__(self, app: faust.App, catalog: TopicCatalog, policy: BudgetPolicy) -> None:
        self.policy = policy
        self._inputs = {
            catalog.name(TopicName.TOOL_INVOCATIONS),
            catalog.name(TopicName.COST_EVENTS),
        }
        self._sender = RoutedSender(
            app,
            catalog.name(TopicName.BUDGET_SPEND),
            catalog.spec(TopicName.BUDGET_SPEND).partitions,
        )
        self.routed = 0

    def forget_source(self, topic: str, partition: int) -> None:
        self._sender.forget_source(topic, partition)

    async def handle(self, result: IngestResult) -> None:
        if not self.policy.budgets or result.topic not in self._inputs or not result.accepted:
            return
        routed = route_batch(
            self.policy,
            (item.event for item in result.accepted),
            source_topic=result.topic,
            source_partition=result.partition,
        )
        for record in routed.records:
            await self._sender.send(
                (result.topic, result.partition), record.key.encode(), encode(record)
            )
        self.routed += routed.spends
        await self._sender.watermark(result.topic, result.partition, routed.reached_ms)


class BudgetCounter:
    """Counts routed spend per `budget-spend` partition and publishes the decisions."""

    def __init__(
        self,
        app: faust.App,
        catalog: TopicCatalog,
        policy: BudgetPolicy,
        client_options: Mapping[str, Any],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
        caps: KeyCaps | None = None,
    ) -> None:
        """`caps`: the worker's key caps; each partition's engine holds its share."""
        self.policy = policy
        self._caps = caps or KeyCaps()
        self._partition_count = catalog.spec(TopicName.BUDGET_SPEND).partitions
        self._chains = ChainBook(
            client_options,
            catalog.name(TopicName.AUDIT),
            catalog.spec(TopicName.AUDIT).partitions,
            chain_id,
            masker,
            audit_policy,
        )
        self.spend_topic_name = catalog.name(TopicName.BUDGET_SPEND)
        self._routed_name = self.spend_topic_name
        self._client_options = client_options
        self._topics = {
            name: catalog.name(name)
            for name in (
                TopicName.BUDGET_STATE,
                TopicName.ALERTS,
                TopicName.AUDIT,
                TopicName.CONTROL,
            )
        }
        self._publisher = DecisionPublisher(app, catalog, self._chains, self._routed_name)
        self._outputs = self._publisher.outputs
        self._sources = [
            (catalog.name(topic), partition)
            for topic in (TopicName.TOOL_INVOCATIONS, TopicName.COST_EVENTS)
            for partition in range(catalog.spec(topic).partitions)
        ]
        self.partitions: dict[int, BudgetCounting] = {}
        self.decisions = 0

    def current_states(self) -> list[BudgetState]:
        """Every budget key this worker counts, in its current period, sorted by key."""
        states = [
            state
            for part in self.partitions.values()
            for ledger in part.engine
            if (state := budget_state(ledger, self.policy.version)) is not None
        ]
        return sorted(states, key=lambda state: (state.budget_id, sorted(state.scope.items())))

    @property
    def unreadable(self) -> int:
        return sum(part.unreadable for part in self.partitions.values())

    def forget_partition(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self._chains.forget(partition)

    async def handle(self, batch: RawBatch) -> None:
        part = self.partitions.get(batch.partition)
        if part is None:
            limit = self._caps.share(StateKind.BUDGETS, self._partition_count, batch.partition)
            part = self.partitions[batch.partition] = BudgetCounting(
                self.policy, self._sources, limit
            )
            await restore_counting(
                self._client_options, part, self._routed_name, batch.partition, batch.first_offset
            )
        engine = part.engine
        source = (batch.topic, batch.partition)
        for record in batch.records:
            for decision in part.apply(record.value or b""):
                await self._publish(engine, decision, source, record.offset)
        touched, part.touched = part.touched, set()
        state_topic = self._topics[TopicName.BUDGET_STATE]
        for key in sorted(touched):
            ledger = engine.ledgers[key]
            state = budget_state(ledger, self.policy.version)
            if state is not None:
                topic_key = state_topic_key(ledger).encode()
                await self._outputs.send(source, state_topic, topic_key, encode(state))

    async def _publish(
        self, engine: BudgetEngine, decision: Decision, source: tuple[str, int], offset: int
    ) -> None:
        self.decisions += 1
        ledger = engine.ledgers.get(decision.key)
        await self._publisher.publish(
            decision,
            source,
            offset,
            event_type=_audit_type(decision),
            severity=_audit_severity(decision),
            payload={**decision.to_json(), **_required_fields(ledger, decision)},
        )


def register_budget_counter(app: BatchingApp, counter: BudgetCounter, queue_size: int) -> None:
    register_counter(
        app,
        counter.spend_topic_name,
        counter.handle,
        name="guardstream.budgets",
        queue_size=queue_size,
    )


def _audit_type(decision: Decision) -> str:
    if is_cardinality_alert(decision):
        return CARDINALITY_AUDIT_TYPE
    if isinstance(decision, RecordDecision):
        return f"aud.budget.{decision.what}"
    if isinstance(decision, ControlDecision):
        return "aud.budget.control"
    if isinstance(decision, TransitionDecision):
        return "aud.budget.exceeded" if decision.to_state != "allow" else "aud.budget.recovered"
    if isinstance(decision, AlertDecision) and decision.alert.status.value == "firing":
        return "aud.budget.exceeded"
    return "aud.budget.alert"


def _audit_severity(decision: Decision) -> Severity:
    if isinstance(decision, AlertDecision):
        return decision.alert.severity
    if isinstance(decision, TransitionDecision) and decision.to_state == "halt":
        return Severity.CRITICAL
    return Severity.WARNING if isinstance(decision, ControlDecision) else Severity.INFO


def _required_fields(ledger: BudgetLedger | None, decision: Decision) -> dict[str, Any]:
    """The seeds' aud.budget.exceeded fields: budget_id, limit, actual, action_taken — as of
    the decision (a threshold alert's and a transition's own figures), not of the ledger when
    the record is published, which depends on how much a watermark released at once."""
    if ledger is None:
        return {}
    config = ledger.config
    counted = ledger.period is not None and ledger.watermark_ms is not None
    actual = str(from_nanos(ledger.spent_nanos)) if counted else None
    action = ledger.action.value
    if isinstance(decision, AlertDecision) and "spent_usd" in decision.alert.labels:
        actual = decision.alert.labels["spent_usd"]
        action = decision.alert.labels.get("action_taken", action)
    elif isinstance(decision, TransitionDecision):
        actual = decision.evidence.get("spent_usd", actual)
        action = decision.to_state
    return {
        "budget_id": config.budget_id,
        "limit": str(config.limit_usd) if config.limit_usd is not None else config.limit_tokens,
        "actual": actual,
        "action_taken": action,
    }
