"""Which SLO trackers an event counts for, and what it counts: the first half of the SLO path.

Pure. `SloRouter.route(event)` turns one input event into `Measure`s, one per matching
tracker key: a burn-rate SLO, a window objective or an SLA contract, each for the label set
its `group_by` picks out of the event. Kept apart from the trackers so the live path can route
where the events are (each input partition, pre-aggregating per key and second) and count
where the tracker lives (DESIGN §11), while replay does both in one process.

What an event measures (the SLI definitions the README documents):
- availability: a ToolInvocation is valid unless its status is `rejected` (the gateway never
  called the vendor: a breaker or budget said no) or its `error_type` is excluded (e.g. 4xx
  caused by the caller); it is good when its status is `success`.
- latency (ratio, quantiles, SLA response times): a successful ToolInvocation's `duration_ms`
  (a `timeout` counts as too slow: its duration is the timeout), or a LatencyEvent's
  `latency_ms` of the configured kind.
- attribute metrics: a ToolInvocation's numeric `attributes[name]`; a missing or non-numeric
  value is not a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from schemas.events import InvocationStatus, LatencyEvent, ToolInvocation
from workers.kernels.slo_config import (
    ATTRIBUTE_PREFIX,
    LatencySource,
    SliKind,
    SloConfig,
    glob_matches,
)
from workers.kernels.slo_targets_config import ObjectiveMetric, SlaContract, WindowObjective
from workers.policies.slos import SloPolicy

SloEvent = ToolInvocation | LatencyEvent

RESOLUTION_MS = 1000
"""Trackers count at 1-second event-time resolution and decide once a second is complete
(`SloEngine`), so decisions depend on each second's totals only: not on how events were
batched, aggregated or interleaved within it, live or in replay."""

MATCH_CACHE_SIZE = 65_536


class TargetKind(StrEnum):
    SLO = "slo"
    OBJECTIVE = "objective"
    SLA = "sla"


class Measure(NamedTuple):
    """One event's contribution to one tracker key."""

    key: str
    """"<kind>:<id>" plus "/<label values>" when the target groups by labels."""
    target: Target
    labels: tuple[str, ...]
    """The event's values of `target.group_by`."""
    valid: int
    good: int
    value: float | None
    """A latency or attribute value for quantile and mean metrics, else None."""


@dataclass(frozen=True, slots=True)
class Target:
    """One configured SLO, objective or contract, as routing sees it."""

    kind: TargetKind
    target_id: str
    selector: Mapping[str, str]
    group_by: tuple[str, ...]
    excluded_error_types: frozenset[str]
    latency_source: LatencySource
    counts_availability: bool
    """Counts good/valid as availability (else as latency under `latency_threshold_ms`)."""
    latency_threshold_ms: float | None
    value_source: str | None
    """"latency", an attribute name, or None when the target needs no values."""
    sketched: bool = False
    """Its values go into a quantile sketch (quantile objectives, SLA response times)."""

    def key(self, labels: tuple[str, ...]) -> str:
        head = f"{self.kind.value}:{self.target_id}"
        return head if not labels else head + "/" + "/".join(labels)


def target_of_slo(config: SloConfig) -> Target:
    sli = config.sli
    return Target(
        kind=TargetKind.SLO,
        target_id=config.slo_id,
        selector=config.selector,
        group_by=config.group_by,
        excluded_error_types=sli.excluded_error_types,
        latency_source=sli.latency_source,
        counts_availability=sli.kind is SliKind.AVAILABILITY,
        latency_threshold_ms=sli.latency_threshold_ms,
        value_source=None,
    )


def target_of_objective(objective: WindowObjective) -> Target:
    metric = objective.metric
    value_source = (
        "latency"
        if metric is ObjectiveMetric.LATENCY_QUANTILE
        else objective.attribute
        if metric in (ObjectiveMetric.ATTRIBUTE_MEAN, ObjectiveMetric.ATTRIBUTE_QUANTILE)
        else None
    )
    return Target(
        kind=TargetKind.OBJECTIVE,
        target_id=objective.objective_id,
        selector=objective.selector,
        group_by=objective.group_by,
        excluded_error_types=objective.excluded_error_types,
        latency_source=objective.latency_source,
        counts_availability=True,
        latency_threshold_ms=None,
        value_source=value_source,
        sketched=objective.quantile is not None,
    )


def target_of_contract(contract: SlaContract) -> Target:
    return Target(
        kind=TargetKind.SLA,
        target_id=contract.contract_id,
        selector=contract.selector,
        group_by=contract.group_by,
        excluded_error_types=contract.excluded_error_types,
        latency_source=contract.latency_source,
        counts_availability=True,
        latency_threshold_ms=None,
        value_source="latency",
        sketched=True,
    )


def targets_of(policy: SloPolicy) -> tuple[Target, ...]:
    """Every SLO, objective and SLA contract of `policy`, in that order."""
    return (
        *(target_of_slo(c) for c in policy.slos),
        *(target_of_objective(o) for o in policy.objectives),
        *(target_of_contract(c) for c in policy.contracts),
    )


def field_of(event: SloEvent, name: str) -> str | None:
    if name.startswith(ATTRIBUTE_PREFIX):
        attributes = getattr(event, "attributes", None)
        return None if attributes is None else attributes.get(name[len(ATTRIBUTE_PREFIX) :])
    value = getattr(event, name, None)
    return value if isinstance(value, str) else None


def latency_of(event: SloEvent, source: LatencySource) -> float | None:
    if type(event) is LatencyEvent:
        return event.latency_ms if event.kind.value == source.value else None
    if source is not LatencySource.DURATION or type(event) is not ToolInvocation:
        return None
    status = event.status
    if status is InvocationStatus.SUCCESS or status is InvocationStatus.TIMEOUT:
        return float(event.duration_ms)
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def measure(target: Target, event: SloEvent) -> tuple[int, int, float | None] | None:
    """(valid, good, value) the event contributes to `target`, or None when it measures
    nothing for it."""
    source = target.value_source
    if source is not None and source != "latency":
        value = _number(field_of(event, ATTRIBUTE_PREFIX + source))
        return None if value is None else (1, 1, value)
    if target.counts_availability:
        if type(event) is not ToolInvocation:
            # A latency probe says nothing about calls succeeding, only about their speed.
            if source is None:
                return None
            latency = latency_of(event, target.latency_source)
            return None if latency is None else (0, 0, latency)
        status = event.status
        if status is InvocationStatus.REJECTED:
            return None
        if status is not InvocationStatus.SUCCESS and event.error_type in (
            target.excluded_error_types
        ):
            return None
        good = 1 if status is InvocationStatus.SUCCESS else 0
        value = latency_of(event, target.latency_source) if source == "latency" else None
        return (1, good, value)
    latency = latency_of(event, target.latency_source)
    if latency is None:
        return None
    threshold = target.latency_threshold_ms
    assert threshold is not None
    return (1, 1 if latency <= threshold else 0, None)


class SloRouter:
    """Routes events to tracker keys; matching is cached by the values of the fields that
    some selector or group_by reads (a bounded cache: made-up values cannot grow memory)."""

    def __init__(self, targets: tuple[Target, ...]) -> None:
        self.targets = targets
        self._fields = tuple(sorted({name for t in targets for name in (*t.selector, *t.group_by)}))
        self._cache: dict[tuple[str, tuple[str | None, ...]], tuple[Target, ...]] = {}

    def route(self, event: SloEvent) -> list[Measure]:
        if not self.targets:
            return []
        values = tuple([field_of(event, name) for name in self._fields])
        cache_key = (type(event).__name__, values)
        matched = self._cache.get(cache_key)
        if matched is None:
            if len(self._cache) >= MATCH_CACHE_SIZE:
                self._cache.clear()
            fields = dict(zip(self._fields, values, strict=True))
            matched = self._cache[cache_key] = tuple(
                t
                for t in self.targets
                if all(glob_matches(p, fields[name]) for name, p in t.selector.items())
                and all(fields[name] is not None for name in t.group_by)
            )
        measures = []
        for target in matched:
            contribution = measure(target, event)
            if contribution is None:
                continue
            labels = tuple([field_of(event, name) or "" for name in target.group_by])
            measures.append(Measure(target.key(labels), target, labels, *contribution))
        return measures
