"""The topic catalog (DESIGN §3): every topic guardstream reads or writes, in one place.

Names are logical (``tool-invocations``); the physical name is the configured prefix plus the
logical name, so several deployments can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_PREFIX = "guardstream."
DEFAULT_INPUT_PARTITIONS = 4
DEFAULT_INPUT_RETENTION_DAYS = 7
DEFAULT_AUDIT_RETENTION_DAYS = 2555  # the seeds' regulated-mode retention (7 years)


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic must look like; ``retention_ms`` of -1 means keep forever."""

    name: str
    key: str
    value: str
    partitions: int
    cleanup: Cleanup
    retention_ms: int | None = None
    replication: int = 1
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": str(self.cleanup), **self.extra_config}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


class TopicName(StrEnum):
    """Logical names; use :meth:`TopicCatalog.name` for the physical one."""

    TOOL_INVOCATIONS = "tool-invocations"
    COST_EVENTS = "cost-events"
    LATENCY_EVENTS = "latency-events"
    POLICIES = "policies"
    ALERTS = "alerts"
    AUDIT = "audit"
    BREAKER_STATE = "breaker-state"
    BUDGET_STATE = "budget-state"
    SLO_STATE = "slo-state"
    DEPENDENCY_STATE = "dependency-state"
    CONTROL = "control"
    DEAD_LETTER = "dead-letter"
    BUDGET_SPEND = "budget-spend"
    SLO_COUNTS = "slo-counts"
    SNAPSHOTS = "snapshots"


INPUT_TOPICS: tuple[TopicName, ...] = (
    TopicName.TOOL_INVOCATIONS,
    TopicName.COST_EVENTS,
    TopicName.LATENCY_EVENTS,
)


@dataclass(frozen=True, slots=True)
class TopicCatalog:
    """The physical topic set for one deployment."""

    prefix: str = DEFAULT_PREFIX
    input_partitions: int = DEFAULT_INPUT_PARTITIONS
    replication: int = 1
    input_retention_days: int = DEFAULT_INPUT_RETENTION_DAYS
    audit_retention_days: int | None = DEFAULT_AUDIT_RETENTION_DAYS  # None: keep forever

    def name(self, topic: TopicName) -> str:
        return f"{self.prefix}{topic}"

    def logical(self, physical: str) -> TopicName | None:
        if not physical.startswith(self.prefix):
            return None
        try:
            return TopicName(physical[len(self.prefix) :])
        except ValueError:
            return None

    def specs(self) -> list[TopicSpec]:
        inputs_ms = self.input_retention_days * DAY_MS
        audit_ms = -1 if self.audit_retention_days is None else self.audit_retention_days * DAY_MS
        n = self.input_partitions
        rows: list[tuple[TopicName, str, str, int, Cleanup, int | None]] = [
            (
                TopicName.TOOL_INVOCATIONS,
                "vendor/tool",
                "ToolInvocation",
                n,
                Cleanup.DELETE,
                inputs_ms,
            ),
            (TopicName.COST_EVENTS, "scope", "CostEvent", n, Cleanup.DELETE, inputs_ms),
            (TopicName.LATENCY_EVENTS, "vendor/tool", "LatencyEvent", n, Cleanup.DELETE, inputs_ms),
            (TopicName.POLICIES, "policy kind", "PolicyDocument", 1, Cleanup.COMPACT, None),
            (TopicName.ALERTS, "alert fingerprint", "Alert", n, Cleanup.DELETE, 30 * DAY_MS),
            (TopicName.AUDIT, "chain id", "AuditRecord", n, Cleanup.DELETE, audit_ms),
            (TopicName.BREAKER_STATE, "breaker key", "BreakerState", n, Cleanup.COMPACT, None),
            (
                TopicName.BUDGET_STATE,
                "budget key + period",
                "BudgetState",
                n,
                Cleanup.COMPACT,
                None,
            ),
            (
                TopicName.SLO_STATE,
                "slo tracker key",
                "SloState | ObjectiveState | SlaState",
                n,
                Cleanup.COMPACT,
                None,
            ),
            # One partition: the cascade has one writer, which sees every breaker.
            (
                TopicName.DEPENDENCY_STATE,
                "node subject",
                "DependencyState",
                1,
                Cleanup.COMPACT,
                None,
            ),
            (TopicName.CONTROL, "target", "ControlCommand", n, Cleanup.DELETE, 7 * DAY_MS),
            (TopicName.DEAD_LETTER, "original key", "DeadLetter", n, Cleanup.DELETE, 30 * DAY_MS),
            # Internal (DESIGN §11): spend routed from the input partitions to the budget's.
            (TopicName.BUDGET_SPEND, "budget key", "BudgetSpend", n, Cleanup.DELETE, inputs_ms),
            # Internal (DESIGN §11): SLO measurements routed to the SLO's partition.
            (TopicName.SLO_COUNTS, "slo tracker key", "SloCounts", n, Cleanup.DELETE, inputs_ms),
            # Internal (issue 12): the cores' periodic snapshots, the latest per partition.
            (TopicName.SNAPSHOTS, "partition name[#chunk]", "Snapshot", n, Cleanup.COMPACT, None),
        ]
        return [
            TopicSpec(
                name=self.name(topic),
                key=key,
                value=value,
                partitions=partitions,
                cleanup=cleanup,
                retention_ms=retention,
                replication=self.replication,
            )
            for topic, key, value, partitions, cleanup, retention in rows
        ]

    def spec(self, topic: TopicName) -> TopicSpec:
        wanted = self.name(topic)
        return next(spec for spec in self.specs() if spec.name == wanted)
