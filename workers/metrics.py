"""Prometheus metrics: every metric name lives here.

Counters are kept as plain ints by the stages (no per-event prometheus call on the hot path)
and turned into metric families only when Prometheus scrapes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from workers.alerting.forwarder import ForwarderCounters
from workers.batching.timing import BatchTimings, Histogram
from workers.ingest.stage import IngestCounters
from workers.kernels.key_cap import KeyCounts
from workers.projection.projector import ProjectorCounters

EVENTS_ACCEPTED = "guardstream_events_accepted"
EVENTS_DUPLICATE = "guardstream_events_duplicate"
CLOCK_TICKS = "guardstream_clock_ticks"
EVENTS_DEAD_LETTERED = "guardstream_events_dead_lettered"
DEDUP_TRACKED_IDS = "guardstream_dedup_tracked_ids"
CONSUMER_LAG = "guardstream_consumer_lag_records"
LAST_BATCH_TIME = "guardstream_ingest_last_batch_unixtime"
BREAKERS = "guardstream_breakers"
BREAKER_TRANSITIONS = "guardstream_breaker_transitions"
BREAKER_ALERTS = "guardstream_breaker_alerts"
BUDGET_SPEND_ROUTED = "guardstream_budget_spend_routed"
BUDGET_DECISIONS = "guardstream_budget_decisions"
BUDGET_UTILIZATION = "guardstream_budget_utilization_ratio"
BUDGET_ACTION = "guardstream_budget_action"
BREAKER_STATE = "guardstream_breaker_state"
BREAKER_STATE_OMITTED = "guardstream_breaker_state_keys_omitted"
BUDGET_KEYS_OMITTED = "guardstream_budget_keys_omitted"
SLO_KEYS_OMITTED = "guardstream_slo_keys_omitted"
SLO_MEASURES_ROUTED = "guardstream_slo_measures_routed"
SLO_DECISIONS = "guardstream_slo_decisions"
SLO_BURN_RATE = "guardstream_slo_burn_rate"
SLO_ERROR_BUDGET_REMAINING = "guardstream_slo_error_budget_remaining"
UNDECODABLE_BATCHES = "guardstream_undecodable_batches"
STATE_KEYS = "guardstream_state_keys"
STATE_KEYS_MAX = "guardstream_state_keys_max"
STATE_KEYS_REFUSED = "guardstream_state_keys_refused"
STATE_KEYS_EVICTED = "guardstream_state_keys_evicted"
PARTITION_MIGRATIONS = "guardstream_partition_migrations"
PROJECTION_RECORDS = "guardstream_projection_records"
PROJECTION_UPDATES = "guardstream_projection_updates"
PROJECTION_UNREADABLE = "guardstream_projection_unreadable_records"
PROJECTION_REBUILDS = "guardstream_projection_rebuilds"
PROJECTION_REDIS_ERRORS = "guardstream_projection_redis_errors"
PROJECTION_LAG_RECORDS = "guardstream_projection_lag_records"
PROJECTION_LAG_SECONDS = "guardstream_projection_lag_seconds"
PROJECTION_LAST_UPDATE = "guardstream_projection_last_update_unixtime"
ALERTS_PUBLISHED = "guardstream_alerts_published"
BATCH_SECONDS = "guardstream_batch_seconds"
COMMIT_SECONDS = "guardstream_commit_seconds"
COMMIT_WAIT_SECONDS = "guardstream_commit_wait_seconds"
FORWARDER_RECORDS = "guardstream_alert_forwarder_records"
FORWARDER_UNREADABLE = "guardstream_alert_forwarder_unreadable_records"
FORWARDER_UNROUTED = "guardstream_alerts_unrouted"
ALERTS_DELIVERED = "guardstream_alerts_delivered"
ALERTS_RESENT = "guardstream_alerts_resent"
ALERT_DELIVERY_FAILURES = "guardstream_alert_delivery_failed_attempts"
ALERTS_DEAD_LETTERED = "guardstream_alerts_dead_lettered"
ALERTS_FIRING = "guardstream_alerts_firing"
FORWARDER_LAG_RECORDS = "guardstream_alert_forwarder_lag_records"
FORWARDER_LAST_DELIVERY = "guardstream_alert_forwarder_last_delivery_unixtime"

LagSource = Callable[[], Mapping[tuple[str, int], int]]


class IngestCollector(Collector):
    def __init__(
        self,
        counters: IngestCounters,
        tracked_ids: Callable[[], int],
        lag: LagSource,
        last_batch_unixtime: Callable[[], float | None],
    ) -> None:
        self._counters = counters
        self._tracked_ids = tracked_ids
        self._lag = lag
        self._last_batch_unixtime = last_batch_unixtime

    def collect(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            EVENTS_ACCEPTED, "Valid, first-seen input events", labels=["topic"]
        )
        for topic, count in sorted(self._counters.accepted.items()):
            accepted.add_metric([topic], count)
        duplicate = CounterMetricFamily(
            EVENTS_DUPLICATE, "Input events dropped as duplicate event_ids", labels=["topic"]
        )
        for topic, count in sorted(self._counters.duplicates.items()):
            duplicate.add_metric([topic], count)
        ticks = CounterMetricFamily(
            CLOCK_TICKS, "Clock ticks read from the input partitions", labels=["topic"]
        )
        for topic, count in sorted(self._counters.clock_ticks.items()):
            ticks.add_metric([topic], count)
        dead = CounterMetricFamily(
            EVENTS_DEAD_LETTERED, "Input records sent to dead-letter", labels=["topic", "kind"]
        )
        for (topic, kind), count in sorted(self._counters.rejected.items()):
            dead.add_metric([topic, kind], count)
        tracked = GaugeMetricFamily(DEDUP_TRACKED_IDS, "event_ids held for de-duplication")
        tracked.add_metric([], self._tracked_ids())
        lag = GaugeMetricFamily(
            CONSUMER_LAG, "Records between read position and end", labels=["topic", "partition"]
        )
        for (topic, partition), records in sorted(self._lag().items()):
            lag.add_metric([topic, str(partition)], records)
        metrics: list[Metric] = [accepted, duplicate, ticks, dead, tracked, lag]
        last_batch = self._last_batch_unixtime()
        if last_batch is not None:
            # Staleness alerting (and the benchmark's clock): when did a batch last finish?
            metrics.append(
                GaugeMetricFamily(
                    LAST_BATCH_TIME, "Wall time the last input batch finished", value=last_batch
                )
            )
        yield from metrics


MAX_KEYED_SERIES = 200
"""Keys exported per keyed gauge (breaker state, budget utilization and action, SLO burn rate
and error budget): the ones that need attention first (breakers not closed; budgets most
used; SLOs with the least error budget left), the count of the rest in
`guardstream_breaker_state_keys_omitted` / `_budget_keys_omitted` / `_slo_keys_omitted`. Keys are
producer-controlled (vendor/tool, users): an uncapped label would let traffic grow Prometheus
without bound."""


class BreakerCollector(Collector):
    """Breakers per state, the state of each breaker (capped), and the transitions and alerts
    published so far."""

    def __init__(
        self,
        states: Callable[[], Mapping[str, int]],
        transitions: Callable[[], int],
        alerts: Callable[[], int],
        keyed: Callable[[], Iterable[tuple[str, str]]] = lambda: (),
    ) -> None:
        self._states = states
        self._transitions = transitions
        self._alerts = alerts
        self._keyed = keyed

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(BREAKERS, "Circuit breakers by state", labels=["state"])
        for state, count in sorted(self._states().items()):
            states.add_metric([state], count)
        yield states
        keyed = GaugeMetricFamily(
            BREAKER_STATE, "1 for each breaker's current state (capped)", labels=["key", "state"]
        )
        shown, omitted = _capped(self._keyed(), lambda ks: (ks[1] == "closed", ks[0]))
        for key, state in shown:
            keyed.add_metric([key, state], 1)
        yield keyed
        yield GaugeMetricFamily(
            BREAKER_STATE_OMITTED, "Breakers left out of the capped per-key gauge", value=omitted
        )
        yield CounterMetricFamily(
            BREAKER_TRANSITIONS, "Breaker transitions published", value=self._transitions()
        )
        yield CounterMetricFamily(BREAKER_ALERTS, "Breaker alerts published", value=self._alerts())


class BudgetCollector(Collector):
    """Spend routed to budget-spend by this worker, the budget decisions it published, and
    each budget key's utilization and action (the most used first, capped)."""

    def __init__(
        self,
        routed: Callable[[], int],
        decisions: Callable[[], int],
        keyed: Callable[[], Iterable[tuple[str, str, float, str]]] = lambda: (),
    ) -> None:
        self._routed = routed
        self._decisions = decisions
        self._keyed = keyed

    def collect(self) -> Iterator[Metric]:
        utilization = GaugeMetricFamily(
            BUDGET_UTILIZATION, "Spend / limit of the current period", labels=["budget", "key"]
        )
        action = GaugeMetricFamily(
            BUDGET_ACTION, "1 for each budget key's action", labels=["budget", "key", "action"]
        )
        shown, omitted = _capped(self._keyed(), lambda g: (-g[2], g[1]))
        for budget, key, used, decided in shown:
            utilization.add_metric([budget, key], used)
            action.add_metric([budget, key, decided], 1)
        yield utilization
        yield action
        yield GaugeMetricFamily(
            BUDGET_KEYS_OMITTED, "Budget keys left out of the capped per-key gauges", value=omitted
        )
        yield CounterMetricFamily(
            BUDGET_SPEND_ROUTED, "Event x budget spends routed", value=self._routed()
        )
        yield CounterMetricFamily(
            BUDGET_DECISIONS, "Budget decisions published", value=self._decisions()
        )


class SloCollector(Collector):
    """Measures routed to slo-counts, SLO decisions published, and per burn-rate SLO (of the
    trackers this worker counts) its burn rate per window and error budget remaining."""

    def __init__(
        self,
        routed: Callable[[], int],
        decisions: Callable[[], int],
        burn: Callable[[], Iterator[tuple[str, Mapping[str, float], float]]],
    ) -> None:
        self._routed = routed
        self._decisions = decisions
        self._burn = burn

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            SLO_MEASURES_ROUTED, "Event x SLO measures routed", value=self._routed()
        )
        yield CounterMetricFamily(SLO_DECISIONS, "SLO decisions published", value=self._decisions())
        rates = GaugeMetricFamily(
            SLO_BURN_RATE, "Error-budget burn rate per window", labels=["slo", "window"]
        )
        remaining = GaugeMetricFamily(
            SLO_ERROR_BUDGET_REMAINING, "Fraction of the error budget left", labels=["slo"]
        )
        shown, omitted = _capped(self._burn(), lambda burn: (burn[2], burn[0]))
        for key, windows, left in shown:
            for window, rate in windows.items():
                rates.add_metric([key, window], rate)
            remaining.add_metric([key], left)
        yield rates
        yield remaining
        yield GaugeMetricFamily(
            SLO_KEYS_OMITTED, "SLO keys left out of the capped per-key gauges", value=omitted
        )


class UndecodableBatchCollector(Collector):
    """Input record batches that could not be decoded, dead-lettered as offset ranges."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            UNDECODABLE_BATCHES,
            "Undecodable input record batches dead-lettered (codec missing or unknown, corrupt)",
            labels=["topic", "codec"],
        )
        for (topic, codec), count in sorted(self._counts().items()):
            family.add_metric([topic, codec], count)
        yield family


class CardinalityCollector(Collector):
    """Per kind of keyed state (breakers, budgets, slos, dedup): keys held, the worker's cap,
    and keys refused into an overflow state or evicted (issue 11)."""

    def __init__(
        self, counts: Callable[[], Mapping[str, KeyCounts]], caps: Mapping[str, int]
    ) -> None:
        self._counts = counts
        self._caps = caps

    def collect(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(STATE_KEYS, "Keys of keyed state held", labels=["state"])
        cap = GaugeMetricFamily(
            STATE_KEYS_MAX, "Keys of keyed state one worker may hold", labels=["state"]
        )
        refused = CounterMetricFamily(
            STATE_KEYS_REFUSED,
            "New keys refused at the cap (their traffic counted in an overflow state)",
            labels=["state"],
        )
        evicted = CounterMetricFamily(
            STATE_KEYS_EVICTED,
            "Keys evicted at the cap (idle breakers; dedup: ids forgotten before the horizon)",
            labels=["state"],
        )
        for state, counts in sorted(self._counts().items()):
            held.add_metric([state], counts.held)
            refused.add_metric([state], counts.refused)
            evicted.add_metric([state], counts.evicted)
        for state, max_keys in sorted(self._caps.items()):
            cap.add_metric([state], max_keys)
        yield from (held, cap, refused, evicted)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


class MigrationCollector(Collector):
    """Lost transactions after which the worker gave its partitions up (`batching.migration`)."""

    def __init__(self, migrations: Callable[[], int]) -> None:
        self._migrations = migrations

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            PARTITION_MIGRATIONS,
            "Times a fenced or failed transaction made this worker give up its partitions",
        )
        family.add_metric([], self._migrations())
        yield family


class ProjectorCollector(Collector):
    """The live-state projector (`guardstream project`): what it read and wrote, how far
    Redis is behind the state topics, and how often Redis lost the projection."""

    def __init__(self, counters: ProjectorCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters
        yield CounterMetricFamily(PROJECTION_RECORDS, "State records read", value=c.records)
        yield CounterMetricFamily(
            PROJECTION_UPDATES, "Redis hashes changed (older records change none)", value=c.updates
        )
        yield CounterMetricFamily(
            PROJECTION_UNREADABLE, "State records skipped as unreadable", value=c.unreadable
        )
        yield CounterMetricFamily(
            PROJECTION_REBUILDS, "Rebuilds of the projection from the topics", value=c.rebuilds
        )
        yield CounterMetricFamily(
            PROJECTION_REDIS_ERRORS, "Redis calls failed (then retried)", value=c.redis_errors
        )
        yield GaugeMetricFamily(
            PROJECTION_LAG_RECORDS, "State records not yet in Redis", value=c.lag_records
        )
        yield GaugeMetricFamily(
            PROJECTION_LAG_SECONDS,
            "Age of the oldest state record being applied (0 when caught up)",
            value=c.lag_seconds,
        )
        if c.last_update_unixtime is not None:
            yield GaugeMetricFamily(
                PROJECTION_LAST_UPDATE, "When Redis was last written", value=c.last_update_unixtime
            )


class ForwarderCollector(Collector):
    """The alert forwarder (`guardstream alerts forward`): per receiver what it delivered,
    re-sent, failed to deliver and dead-lettered; how far it is behind the alerts topic."""

    def __init__(self, counters: ForwarderCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        c = self._counters
        yield CounterMetricFamily(FORWARDER_RECORDS, "Alert records read", value=c.records)
        yield CounterMetricFamily(
            FORWARDER_UNREADABLE, "Alert records skipped as unreadable", value=c.unreadable
        )
        yield CounterMetricFamily(
            FORWARDER_UNROUTED, "Alerts no route sent to a receiver", value=c.unrouted
        )
        families = {
            name: CounterMetricFamily(name, text, labels=["receiver"])
            for name, text in (
                (ALERTS_DELIVERED, "Alerts a receiver took (first deliveries)"),
                (ALERTS_RESENT, "Firing alerts sent again"),
                (ALERT_DELIVERY_FAILURES, "Sends a receiver did not take"),
                (ALERTS_DEAD_LETTERED, "Alerts sent to the dead-letter topic"),
            )
        }
        last = GaugeMetricFamily(
            FORWARDER_LAST_DELIVERY, "When a receiver last took alerts", labels=["receiver"]
        )
        for receiver, counts in sorted(c.receivers.items()):
            families[ALERTS_DELIVERED].add_metric([receiver], counts.delivered)
            families[ALERTS_RESENT].add_metric([receiver], counts.resent)
            families[ALERT_DELIVERY_FAILURES].add_metric([receiver], counts.failed_attempts)
            families[ALERTS_DEAD_LETTERED].add_metric([receiver], counts.dead_lettered)
            if counts.last_delivery_unixtime is not None:
                last.add_metric([receiver], counts.last_delivery_unixtime)
        yield from families.values()
        yield last
        yield GaugeMetricFamily(ALERTS_FIRING, "Incidents open (firing)", value=c.firing)
        yield GaugeMetricFamily(
            FORWARDER_LAG_RECORDS, "Alert records not yet delivered", value=c.lag_records
        )


class AlertCountCollector(Collector):
    """Alerts the worker published, by kind, severity and status (firing / resolved)."""

    def __init__(self, counts: Callable[[], Iterable[Mapping[tuple[str, str, str], int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            ALERTS_PUBLISHED, "Alerts published", labels=["kind", "severity", "status"]
        )
        total: dict[tuple[str, str, str], int] = {}
        for counts in self._counts():
            for labels, count in counts.items():
                total[labels] = total.get(labels, 0) + count
        for labels, count in sorted(total.items()):
            family.add_metric(list(labels), count)
        yield family


class TimingCollector(Collector):
    """How long batches and commits take (`workers.batching.timing`)."""

    def __init__(self, timings: BatchTimings) -> None:
        self._timings = timings

    def collect(self) -> Iterator[Metric]:
        t = self._timings
        for name, text, histogram in (
            (BATCH_SECONDS, "One batch handled by an agent", t.batch),
            (COMMIT_SECONDS, "One commit of offsets (and transactions)", t.commit),
            (COMMIT_WAIT_SECONDS, "A commit waiting for the batches in flight", t.commit_wait),
        ):
            yield _histogram(name, text, histogram)


def _histogram(name: str, text: str, histogram: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, text)
    rows = histogram.cumulative()
    family.add_metric([], [(bound, float(count)) for bound, count in rows], histogram.total_s)
    return family


T = TypeVar("T")


def _capped(items: Iterable[T], order: Callable[[T], Any]) -> tuple[list[T], int]:
    """The first MAX_KEYED_SERIES of `items` by `order`, and how many were left out."""
    every = list(items)
    shown = heapq.nsmallest(MAX_KEYED_SERIES, every, key=order)
    return shown, len(every) - len(shown)
