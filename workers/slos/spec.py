"""SLOs, objectives and SLA contracts as a kernel of the shell (`workers.shell.spec`): a routed
kernel (DESIGN §11: route where the events are, count where the SLO is).

Each input batch's tool invocations and latency events are routed to the SLOs, objectives and
SLA contracts they count for, summed per tracker key and second and sent to `slo-counts`; one
`SloCounting` per `slo-counts` partition counts them in event-time order under the low
watermark of the input partitions. Every decision is audited (`aud.slo.*`); `slo-state` gets
a record for every tracker a batch touched; degradation commands go to `control`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from prometheus_client.registry import Collector

from schemas import audit_names as names
from topics.catalog import TopicName
from workers.cardinality import is_cardinality_alert
from workers.decisions import (
    ControlDecision,
    Decision,
    Kernel,
    RecordDecision,
    audit_severity,
)
from workers.kernels.key_cap import StateKind
from workers.metrics import SloCollector
from workers.shell.spec import AuditEntry, KernelSpec, KernelStats
from workers.slos.counting import SloCounting, state_key
from workers.slos.records import count_batch
from workers.slos.routing import SLO_INPUTS, SloRouter, targets_of


def audit_entry(core: SloCounting, decision: Decision) -> AuditEntry:
    return AuditEntry(_audit_type(decision), audit_severity(decision), decision.to_json())


def _audit_type(decision: Decision) -> str:
    if is_cardinality_alert(decision):
        return names.CARDINALITY_LIMIT
    if isinstance(decision, RecordDecision):
        return names.SLO_RECORD_PREFIX + decision.what
    if isinstance(decision, ControlDecision):
        return names.SLO_CONTROL
    return names.SLO_ALERT


def burn_rates(cores: Any) -> Iterator[tuple[str, Mapping[str, float], float]]:
    """(tracker key, burn rate per window, error budget remaining) of each burn-rate SLO of
    `cores` (for metrics)."""
    for core in cores:
        yield from core.engine.burn_rates()


def _collector(stats: KernelStats) -> Collector:
    return SloCollector(stats.routed, stats.decisions, lambda: burn_rates(stats.cores()))


SLOS: KernelSpec[SloCounting] = KernelSpec(
    kernel=Kernel.SLO,
    state_kind=StateKind.SLOS,
    inputs=SLO_INPUTS,
    state_topic=TopicName.SLO_STATE,
    page="/slos",
    enabled=lambda policies: bool(targets_of(policies.slos)),
    audit=audit_entry,
    state_order=state_key,
    collector=_collector,
    routed_topic=TopicName.SLO_COUNTS,
    router=lambda policies: partial(count_batch, SloRouter(targets_of(policies.slos))),
    routed=lambda policies, sources, limit: SloCounting(policies.slos, sources, limit),
)
