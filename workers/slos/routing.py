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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

from schemas.events import InvocationStatus, LatencyEvent, ToolInvocation
from topics.catalog import TopicName
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

SLO_INPUTS = (TopicName.TOOL_INVOCATIONS, TopicName.LATENCY_EVENTS)
"""The input topics SLOs measure (and whose watermarks the SLO counters wait for)."""

RESOLUTION_MS = 1000
"""Trackers count at 1-second event-time resolution and decide once a second is complete
(`SloEngine`), so decisions depend on each second's totals only: not on how events were
batched, aggregated or interleaved within it, live or in replay."""

MATCH_CACHE_SIZE = 16_384
"""Entries of each routing cache (about 1.8 KB a route with configs/): made-up field values
cannot grow it past ~30 MB, and a miss costs ~30 µs, so a fleet with more combinations than
this only pays that for them."""


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
    return _counting_target(
        TargetKind.OBJECTIVE,
        objective.objective_id,
        objective,
        value_source=value_source,
        sketched=objective.quantile is not None,
    )


def target_of_contract(contract: SlaContract) -> Target:
    return _counting_target(
        TargetKind.SLA, contract.contract_id, contract, value_source="latency", sketched=True
    )


def _counting_target(
    kind: TargetKind,
    target_id: str,
    source: WindowObjective | SlaContract,
    *,
    value_source: str | None,
    sketched: bool,
) -> Target:
    """An objective or contract: both count every valid event as availability."""
    return Target(
        kind=kind,
        target_id=target_id,
        selector=source.selector,
        group_by=source.group_by,
        excluded_error_types=source.excluded_error_types,
        latency_source=source.latency_source,
        counts_availability=True,
        latency_threshold_ms=None,
        value_source=value_source,
        sketched=sketched,
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


Contribution = tuple[int, int, float | None]
"""(valid, good, value) of one event for one measurement."""
Route = tuple[int, str, Target, tuple[str, ...]]
"""(index of the target's measurement, tracker key, target, labels)."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a target reads from an event (the SLI half of `Target`): targets with equal ones
    measure an event alike, so a router measures once per distinct one."""

    value_source: str | None
    counts_availability: bool
    excluded_error_types: frozenset[str]
    latency_source: LatencySource
    latency_threshold_ms: float | None

    @classmethod
    def of(cls, target: Target) -> Measurement:
        return cls(
            target.value_source,
            target.counts_availability,
            target.excluded_error_types,
            target.latency_source,
            target.latency_threshold_ms,
        )

    def measure(self, event: SloEvent) -> Contribution | None:
        """(valid, good, value) the event contributes, or None when it measures nothing."""
        source = self.value_source
        if source is not None and source != "latency":
            value = _number(field_of(event, ATTRIBUTE_PREFIX + source))
            return None if value is None else (1, 1, value)
        if self.counts_availability:
            if type(event) is not ToolInvocation:
                # A latency probe says nothing about calls succeeding, only about their speed.
                if source is None:
                    return None
                latency = latency_of(event, self.latency_source)
                return None if latency is None else (0, 0, latency)
            status = event.status
            if status is InvocationStatus.REJECTED:
                return None
            if status is not InvocationStatus.SUCCESS and event.error_type in (
                self.excluded_error_types
            ):
                return None
            good = 1 if status is InvocationStatus.SUCCESS else 0
            value = latency_of(event, self.latency_source) if source == "latency" else None
            return (1, good, value)
        latency = latency_of(event, self.latency_source)
        if latency is None:
            return None
        threshold = self.latency_threshold_ms
        assert threshold is not None
        return (1, 1 if latency <= threshold else 0, None)


class Routes(NamedTuple):
    """Where events with one set of field values go."""

    measurements: tuple[Measurement, ...]
    """The distinct measurements of the targets they match."""
    routes: tuple[Route, ...]
    """A `Route` per target, in policy order."""
    grouped: tuple[tuple[Measurement, tuple[tuple[str, Target, tuple[str, ...]], ...]], ...]
    """The same routes grouped by measurement: (measurement, its (key, target, labels)...)."""


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """What routing needs of one target, worked out once per router (hashed by identity)."""

    target: Target
    measurement: int
    """Index of the target's measurement among the router's distinct ones."""
    head: str
    """The target's key without labels."""
    entry: tuple[str, Target, tuple[str, ...]]
    """(key, target, labels) of a target without group_by (the same for every event)."""


class SloRouter:
    """Routes events to tracker keys.

    Which targets an event matches, and its tracker keys and labels there, depend only on the
    fields some selector or group_by reads: they are cached by those fields' values (a bounded
    cache: made-up values cannot grow memory), read in one `attrgetter` call. Which targets
    match depends on the selectors' fields alone, cached apart: a new value of a field that
    only groups (a new tool name) costs its keys' strings, not the selectors' globs again.
    Per event what is left is measuring it, once per distinct `Measurement` of the matched
    targets.
    """

    def __init__(self, targets: tuple[Target, ...]) -> None:
        self.targets = targets
        self._fields = tuple(sorted({name for t in targets for name in (*t.selector, *t.group_by)}))
        self._attributes = tuple(
            name[len(ATTRIBUTE_PREFIX) :]
            for name in self._fields
            if name.startswith(ATTRIBUTE_PREFIX)
        )
        self._readers: dict[type, Callable[[SloEvent], object]] = {}
        self._cache: dict[tuple[type, object, tuple[str | None, ...]], Routes] = {}
        distinct: dict[Measurement, int] = {}
        plans = []
        for target in targets:
            index = distinct.setdefault(Measurement.of(target), len(distinct))
            head = target.key(())
            plans.append(_Plan(target, index, head, (head, target, ())))
        self._plans = tuple(plans)
        self._measurements = tuple(distinct)
        self._selector_fields = tuple(sorted({name for t in targets for name in t.selector}))
        self._matches: dict[tuple[str | None, ...], tuple[_Plan, ...]] = {}
        self._shared: dict[Any, Any] = {}

    def route(self, event: SloEvent) -> list[Measure]:
        routes, measured = self.match(event)
        make = Measure._make
        return [
            make((key, target, labels, *contribution))
            for index, key, target, labels in routes
            if (contribution := measured[index]) is not None
        ]

    def match(self, event: SloEvent) -> tuple[tuple[Route, ...], list[Contribution | None]]:
        """`route` unassembled: (measurement index, key, target, labels) of every target the
        event matches, and what it measures per measurement (None: nothing)."""
        found = self.routes(event)
        return found.routes, [m.measure(event) for m in found.measurements]

    def routes(self, event: SloEvent) -> Routes:
        """Where the event goes; it still has to be measured (`Measurement.measure`)."""
        if not self.targets:
            return _NOWHERE
        kind = type(event)
        read = self._readers.get(kind)
        if read is None:
            read = self._readers[kind] = self._reader(kind)
        cache_key = (kind, read(event), tuple(map(event.attributes.get, self._attributes)))
        found = self._cache.get(cache_key)
        if found is None:
            if len(self._cache) >= MATCH_CACHE_SIZE:
                self._cache.clear()
            found = self._cache[cache_key] = self._routes(event)
        return found

    def _reader(self, kind: type) -> Callable[[SloEvent], object]:
        """Reads the plain (non-attribute) fields of the cache key from a `kind` event: those
        its model has (the others are None for every event of the kind)."""
        fields = getattr(kind, "model_fields", {})
        names = [n for n in self._fields if not n.startswith(ATTRIBUTE_PREFIX) and n in fields]
        return attrgetter(*names) if names else lambda _: None

    def _routes(self, event: SloEvent) -> Routes:
        values = {name: field_of(event, name) for name in self._fields}
        routes: list[Route] = []
        grouped: dict[int, list[tuple[str, Target, tuple[str, ...]]]] = {}
        local: dict[int, int] = {}  # router's measurement index -> this event's
        # What does not depend on group_by values is shared by every cached route: one copy.
        shared = self._shared.setdefault
        unlabelled: dict[int, list[_Plan]] = {}  # per measurement, while no route has labels
        for plan in self._matching(values):
            target = plan.target
            index = local.get(plan.measurement)
            if index is None:
                index = local[plan.measurement] = len(local)
                grouped[index] = []
                unlabelled[index] = []
            if target.group_by:
                found = [values[name] for name in target.group_by]
                if None in found:
                    if not grouped[index]:
                        del local[plan.measurement], grouped[index], unlabelled[index]
                    continue
                labels = tuple(value or "" for value in found)
                entry = (plan.head + "/" + "/".join(labels), target, labels)
                routes.append((index, *entry))
                unlabelled.pop(index, None)
            else:
                entry = plan.entry
                routes.append(shared((index, plan), (index, *entry)))
                if index in unlabelled:
                    unlabelled[index].append(plan)
            grouped[index].append(entry)
        if len(self._shared) >= MATCH_CACHE_SIZE:
            self._shared.clear()
        measurements = tuple(self._measurements[index] for index in local)
        return Routes(
            measurements,
            tuple(routes),
            tuple(
                (
                    measurements[index],
                    shared(tuple(unlabelled[index]), tuple(entries))
                    if index in unlabelled
                    else tuple(entries),
                )
                for index, entries in grouped.items()
            ),
        )

    def _matching(self, values: Mapping[str, str | None]) -> tuple[_Plan, ...]:
        """The targets whose selector the values match, in policy order (cached by the
        selectors' fields; bounded like the route cache)."""
        selected = tuple([values[name] for name in self._selector_fields])
        plans = self._matches.get(selected)
        if plans is None:
            if len(self._matches) >= MATCH_CACHE_SIZE:
                self._matches.clear()
            plans = self._matches[selected] = tuple(
                plan
                for plan in self._plans
                if all(glob_matches(p, values[name]) for name, p in plan.target.selector.items())
            )
        return plans


_NOWHERE = Routes((), (), ())
