"""The Faust app factory: settings in, a configured worker app out.

The app is thin wiring: topics from the catalog, the batch-shaped ingest agent around the pure
:class:`IngestStage`, dead letters out, accepted events on to the sinks, and the web endpoints
(health, Prometheus metrics).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import faust
from aiokafka.errors import KafkaError
from faust.auth import SASLCredentials, SSLCredentials
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from schemas.codec import encode
from schemas.events import INPUT_EVENT_TYPES, InputEvent
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from workers.audit.inputs import InputAuditSink
from workers.audit.log_filter import install_log_masking
from workers.audit.masking import Masker
from workers.audit.policy_writer import record_policy_changes
from workers.audit.sealing import default_masker
from workers.batching import BatchingApp, BatchTopic, RawBatch
from workers.batching.outputs import BatchOutputs
from workers.batching.runner import run_batches
from workers.breakers.engine import BreakerRouting
from workers.breakers.sink import BreakerSink
from workers.budgets.sink import BudgetCounter, BudgetRouterSink, register_budget_counter
from workers.clock_ticker import ClockTicker
from workers.ingest.stage import IngestResult, IngestStage
from workers.ingest.undecodable import UndecodableBatchAlerts
from workers.ingest.warmup import ensure_memory
from workers.kernels.key_cap import KeyCounts, StateKind
from workers.metrics import (
    BreakerCollector,
    BudgetCollector,
    CardinalityCollector,
    IngestCollector,
    MigrationCollector,
    SloCollector,
    UndecodableBatchCollector,
    render,
)
from workers.policies.audit_event_types import AuditPolicy, default_audit_policy
from workers.policies.breakers import BreakerPolicy, default_breaker_policy
from workers.policies.budgets import BudgetPolicy, default_budget_policy
from workers.policies.classification import ClassificationPolicy, default_classification_policy
from workers.policies.policy_set import PolicySet
from workers.policies.slos import SloPolicy, default_slo_policy
from workers.recovery import recorded_offsets
from workers.settings import AuditLevel, ProcessingGuarantee, Settings
from workers.slos.routing import targets_of
from workers.slos.sink import SloCounter, SloRouterSink, register_slo_counter

log = logging.getLogger(__name__)

# A fetch returns up to this many records per call; batches are per partition, so agents see
# at most this many per event. Large enough to amortise the hand-off, small enough to keep
# one batch's latency low.
MAX_POLL_RECORDS = 10_000
# aiohttp refuses parameters in content_type=, so the exposition type goes in as a header.
METRICS_HEADERS = {"Content-Type": CONTENT_TYPE_LATEST}
# Bigger fetch responses mean fewer round trips through Faust's consumer thread.
MAX_FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024
# Batches waiting per agent queue; bounds memory to ~MAX_POLL_RECORDS x this many records.
BATCH_QUEUE_MAXSIZE = 8


class EventSink(Protocol):
    """Where accepted events go next (the kernels' agents, in later stages)."""

    async def handle(self, result: IngestResult) -> None: ...


@dataclass(slots=True)
class Worker:
    """Everything the CLI and tests need to run and observe one guardstream worker."""

    settings: Settings
    catalog: TopicCatalog
    app: BatchingApp
    stage: IngestStage
    registry: CollectorRegistry
    sinks: list[EventSink] = field(default_factory=list)
    breakers: BreakerSink | None = None
    budgets: BudgetCounter | None = None
    slos: SloCounter | None = None
    input_audit: InputAuditSink | None = None
    routers: list[BudgetRouterSink | SloRouterSink] = field(default_factory=list)
    """The sinks routing to `budget-spend` / `slo-counts` (they remember sent watermarks)."""
    last_batch_unixtime: float | None = None  # shell bookkeeping; the stage itself has no clock


# See tune_garbage_collector.
GC_GEN0_THRESHOLD = 100_000


def tune_garbage_collector() -> None:
    """Make the cyclic GC run per many batches instead of many times per batch.

    A batch keeps thousands of freshly validated events alive at once; with CPython's default
    gen-0 threshold (700) that triggers collections over Faust's large, long-lived heap several
    times per batch, which profiling showed costs ~40% per event. Freezing what exists at start
    keeps those long-lived objects out of every later collection.
    """
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)
    gc.freeze()


def catalog_for(settings: Settings, audit_policy: AuditPolicy | None = None) -> TopicCatalog:
    """The topics under `settings`; the audit topic keeps records as long as the audit
    event-type policy's longest retention (`audit_policy`, default the built-in one)."""
    audit_types = audit_policy or default_audit_policy(settings.mode)
    return TopicCatalog(
        prefix=settings.topic_prefix,
        input_partitions=settings.input_partitions,
        input_retention_days=settings.retention_days_inputs,
        audit_retention_days=audit_types.topic_retention_days,
    )


def create_worker(
    settings: Settings,
    sinks: Sequence[EventSink] = (),
    *,
    breaker_policy: BreakerRouting | None = None,
    budget_policy: BudgetPolicy | None = None,
    slo_policy: SloPolicy | None = None,
    classification: ClassificationPolicy | None = None,
    audit_policy: AuditPolicy | None = None,
) -> Worker:
    """The worker app. Breakers run under `breaker_policy` (else the mode's default), budgets
    under `budget_policy` and SLOs under `slo_policy` (none by default). `classification`'s
    PII/PHI patterns (default: the seed's) are masked in the audit trail, alerts and logs."""
    catalog = catalog_for(settings, audit_policy)
    app = BatchingApp(settings.app_id, **_faust_settings(settings))
    app.transaction_timeout_ms = int(settings.transaction_timeout_s * 1000)
    models: Mapping[str, type[InputEvent]] = {
        catalog.name(topic): INPUT_EVENT_TYPES[str(topic)] for topic in INPUT_TOPICS
    }
    masker = Masker(classification) if classification is not None else default_masker()
    stage = IngestStage(
        models,
        dedup_horizon_ms=int(settings.dedup_horizon_s * 1000),
        dedup_max_ids=settings.dedup_max_ids_per_partition,
        masker=masker,  # dead letters leave the stage masked by the policy's detectors
    )
    registry = CollectorRegistry()
    worker = Worker(settings, catalog, app, stage, registry, list(sinks))
    registry.register(
        IngestCollector(
            stage.counters, stage.tracked_ids, lambda: _lag(app), lambda: worker.last_batch_unixtime
        )
    )
    registry.register(MigrationCollector(lambda: app.migration.migrations))
    _register_log_masking(app, masker)
    input_audit = InputAuditSink(
        app,
        catalog,
        settings.effective_audit_level,
        settings.kafka_client_options(),
        masker,
        audit_policy,
    )
    worker.input_audit = input_audit
    worker.sinks.append(input_audit)
    undecodable = UndecodableBatchAlerts(app, catalog)
    worker.sinks.append(undecodable)
    registry.register(UndecodableBatchCollector(undecodable.counts))
    policy = breaker_policy or default_breaker_policy(settings.mode)
    breakers = BreakerSink(
        app,
        catalog,
        policy,
        settings.kafka_client_options(),
        masker,
        audit_policy,
        restore_from_trail=settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        and settings.effective_audit_level is AuditLevel.FORENSIC,
        caps=settings.key_caps,
    )
    worker.breakers = breakers
    worker.sinks.append(breakers)
    registry.register(
        BreakerCollector(
            breakers.states_by_state, lambda: breakers.transitions, lambda: breakers.alerts
        )
    )
    if budget_policy is not None and budget_policy.budgets:
        router = BudgetRouterSink(app, catalog, budget_policy)
        worker.sinks.append(router)
        worker.routers.append(router)
        counter = BudgetCounter(
            app,
            catalog,
            budget_policy,
            settings.kafka_client_options(),
            masker,
            audit_policy,
            caps=settings.key_caps,
        )
        worker.budgets = counter
        register_budget_counter(app, counter, BATCH_QUEUE_MAXSIZE)
        registry.register(BudgetCollector(lambda: router.routed, lambda: counter.decisions))
    if slo_policy is not None and targets_of(slo_policy):
        _add_slos(worker, slo_policy, masker, audit_policy)
    registry.register(CardinalityCollector(lambda: _key_counts(worker), _caps(settings)))
    if isinstance(policy, BreakerPolicy):  # a test's own routing has no document to record
        policies = PolicySet(
            policy,
            budget_policy or default_budget_policy(settings.mode),
            slo_policy or default_slo_policy(settings.mode),
            classification or default_classification_policy(settings.mode),
            audit_policy or default_audit_policy(settings.mode),
        )
        _register_policy_trail(worker, policies, masker)
    _register_ingest_agent(worker)
    _register_clock_ticker(worker)
    _register_web_pages(worker)
    return worker


def _key_counts(worker: Worker) -> dict[str, KeyCounts]:
    """Keys each kind of keyed state holds and turned away, over the partitions held now."""
    counts = {
        StateKind.DEDUP.value: KeyCounts(
            worker.stage.tracked_ids(), 0, worker.stage.forgotten_early()
        )
    }
    if worker.breakers is not None:
        engines = worker.breakers.engines.values()
        counts[StateKind.BREAKERS.value] = KeyCounts.of(
            (engine.keys for engine in engines),
            extra_held=sum(len(engine) - len(engine.keys) for engine in engines),
        )
    if worker.budgets is not None:
        parts = worker.budgets.partitions.values()
        counts[StateKind.BUDGETS.value] = KeyCounts.of(part.engine.ledgers for part in parts)
    if worker.slos is not None:
        slo_parts = worker.slos.partitions.values()
        counts[StateKind.SLOS.value] = KeyCounts.of(part.engine.trackers for part in slo_parts)
    return counts


def _caps(settings: Settings) -> dict[str, int]:
    caps = settings.key_caps
    return {
        StateKind.BREAKERS.value: caps.breakers,
        StateKind.BUDGETS.value: caps.budgets,
        StateKind.SLOS.value: caps.slos,
        # One de-duplicator per input topic and partition.
        StateKind.DEDUP.value: settings.dedup_max_ids_per_partition
        * settings.input_partitions
        * len(INPUT_TOPICS),
    }


def _register_policy_trail(worker: Worker, policies: PolicySet, masker: Masker) -> None:
    """At start, record the policies in the audit trail when they changed (`policy_writer`)."""
    settings, catalog = worker.settings, worker.catalog

    async def record_policies() -> None:
        try:
            await record_policy_changes(
                settings.kafka_client_options(),
                app_id=settings.app_id,
                audit_topic=catalog.name(TopicName.AUDIT),
                audit_partitions=catalog.spec(TopicName.AUDIT).partitions,
                policies=policies,
                mode=settings.mode,
                masker=masker,
                audit_policy=policies.audit,
            )
        except KafkaError:
            log.exception("could not record the policy changes in the audit trail")

    worker.app.task(record_policies)


def _register_log_masking(app: faust.App, masker: Masker) -> None:
    """Mask log lines once the worker has configured logging (nothing unmasked in logs)."""

    async def mask_logs() -> None:
        install_log_masking(masker)

    app.task(mask_logs)


def _add_slos(
    worker: Worker, policy: SloPolicy, masker: Masker, audit_policy: AuditPolicy | None
) -> None:
    slo_router = SloRouterSink(worker.app, worker.catalog, policy)
    worker.sinks.append(slo_router)
    worker.routers.append(slo_router)
    slo_counter = SloCounter(
        worker.app,
        worker.catalog,
        policy,
        worker.settings.kafka_client_options(),
        masker,
        audit_policy,
        caps=worker.settings.key_caps,
    )
    worker.slos = slo_counter
    register_slo_counter(worker.app, slo_counter, BATCH_QUEUE_MAXSIZE)
    worker.registry.register(
        SloCollector(
            lambda: slo_router.routed, lambda: slo_counter.decisions, slo_counter.burn_rates
        )
    )


def _register_clock_ticker(worker: Worker) -> None:
    settings, app = worker.settings, worker.app
    if settings.clock_interval_s <= 0:
        return

    def owned() -> list[tuple[str, int]]:
        consumer = app.consumer if app.started else None
        return (
            [] if consumer is None else [(tp.topic, tp.partition) for tp in consumer.assignment()]
        )

    ticker = ClockTicker(worker.catalog, settings.kafka_client_options(), owned)

    async def publish_clock_tick() -> None:
        await ticker.tick()

    app.timer(interval=settings.clock_interval_s, name="guardstream.clock")(publish_clock_tick)

    async def stop_ticker(sender: Any, **kwargs: Any) -> None:
        await ticker.stop()

    app.on_before_shutdown.connect(cast(Any, stop_ticker))


def _register_ingest_agent(worker: Worker) -> None:
    app, catalog, stage = worker.app, worker.catalog, worker.stage
    inputs = BatchTopic(app, topics=stage.topics, maxsize=BATCH_QUEUE_MAXSIZE)
    dead_letter = catalog.name(TopicName.DEAD_LETTER)
    outputs = BatchOutputs(app)

    client_options = worker.settings.kafka_client_options()
    settings = worker.settings
    trail_is_truth = (
        settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        and settings.effective_audit_level is AuditLevel.FORENSIC
    )
    recorded: dict[int, dict[str, int]] = {}  # input partition -> topic -> recorded offset

    async def unrecorded(batch: RawBatch) -> RawBatch | None:
        """The part of `batch` the forensic trail does not hold yet (None: all of it)."""
        if not trail_is_truth:
            return batch
        offsets = recorded.get(batch.partition)
        if offsets is None:
            offsets = recorded[batch.partition] = await recorded_offsets(
                client_options,
                audit_topic=catalog.name(TopicName.AUDIT),
                audit_partitions=catalog.spec(TopicName.AUDIT).partitions,
                partition=batch.partition,
            )
        done = offsets.get(batch.topic, -1)
        if batch.records[-1].offset <= done:
            return None
        if batch.records[0].offset > done:
            return batch
        log.info(
            "%s[%d]: offsets up to %d were processed before", batch.topic, batch.partition, done
        )
        fresh = [record for record in batch.records if record.offset > done]
        return RawBatch(batch.topic, batch.partition, fresh)

    async def process(batch: RawBatch) -> None:
        recalled = await ensure_memory(stage, client_options, batch)
        if recalled is not None:
            log.info("dedup memory of %s[%d]: %d ids", batch.topic, batch.partition, recalled)
        result = stage.process(batch)
        for rejected in result.rejected:
            await outputs.send(
                (batch.topic, batch.partition),
                dead_letter,
                rejected.record.key,
                encode(rejected.dead_letter),
            )
        for sink in worker.sinks:
            await sink.handle(result)

    async def ingest_batch(whole: RawBatch) -> None:
        fresh = await unrecorded(whole)
        if fresh is not None:  # None: processed before a crash, outputs committed
            await process(fresh)
        worker.last_batch_unixtime = time.time()

    async def ingest(batches: faust.StreamT[RawBatch]) -> None:
        await run_batches(app, batches, ingest_batch)

    app.agent(inputs, name="guardstream.ingest", concurrency=1)(ingest)

    tool_topic = catalog.name(TopicName.TOOL_INVOCATIONS)

    async def forget_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))
        for tp in revoked:
            stage.forget_partition(tp.topic, tp.partition)
            for router in worker.routers:
                router.forget_source(tp.topic, tp.partition)
            if worker.input_audit is not None:
                worker.input_audit.forget_partition(tp.partition)
            recorded.pop(tp.partition, None)
            if worker.breakers is not None and tp.topic == tool_topic:
                worker.breakers.forget_partition(tp.partition)
            if worker.budgets is not None and tp.topic == worker.budgets.spend_topic_name:
                worker.budgets.forget_partition(tp.partition)
            if worker.slos is not None and tp.topic == worker.slos.counts_topic_name:
                worker.slos.forget_partition(tp.partition)

    app.on_partitions_revoked.connect(cast(Any, forget_revoked))


def _register_web_pages(worker: Worker) -> None:
    app = worker.app

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(render(worker.registry), headers=dict(METRICS_HEADERS))

    @app.page("/breakers")
    async def breaker_states(web: Any, request: Any) -> Any:
        # What this worker's breakers hold now (its partitions only); the fleet-wide view is
        # the compacted breaker-state topic (`guardstream breakers`).
        sink = worker.breakers
        states = [] if sink is None else sink.current_states()
        return web.json([state.model_dump(mode="json") for state in states])

    @app.page("/budgets")
    async def budget_states(web: Any, request: Any) -> Any:
        # The budget keys this worker counts (its budget-spend partitions); the fleet-wide
        # view is the compacted budget-state topic (`guardstream budgets`).
        counter = worker.budgets
        states = [] if counter is None else counter.current_states()
        return web.json([state.model_dump(mode="json") for state in states])

    @app.page("/slos")
    async def slo_states(web: Any, request: Any) -> Any:
        # The SLO trackers this worker counts (its slo-counts partitions); the fleet-wide view
        # is the compacted slo-state topic (`guardstream slos`).
        counter = worker.slos
        states = [] if counter is None else counter.current_states()
        return web.json([state.model_dump(mode="json") for state in states])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        consumer_ok = app.consumer is not None and not app.consumer.should_stop
        status = 200 if consumer_ok and not app.should_stop else 503
        body = {
            "status": "ok" if status == 200 else "unavailable",
            "mode": str(worker.settings.mode),
        }
        return web.json(body, status=status)


def _lag(app: faust.App) -> dict[tuple[str, int], int]:
    monitor = app.monitor
    if monitor is None:
        return {}
    lag: dict[tuple[str, int], int] = {}
    for tp, end in (monitor.tp_end_offsets or {}).items():
        read = (monitor.tp_read_offsets or {}).get(tp)
        if read is not None:
            lag[(tp.topic, tp.partition)] = max(end - read - 1, 0)
    return lag


def _faust_settings(settings: Settings) -> dict[str, Any]:
    exactly_once = settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
    conf: dict[str, Any] = {
        "broker": [f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        "processing_guarantee": "exactly_once" if exactly_once else "at_least_once",
        "store": "memory://",
        "datadir": settings.data_dir,
        "topic_partitions": settings.input_partitions,
        # guardstream creates and verifies its topics from the catalog (topics/catalog.py).
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        "broker_max_poll_records": MAX_POLL_RECORDS,
        "consumer_max_fetch_size": MAX_FETCH_BYTES_PER_PARTITION,
        "web_enabled": settings.web_port != 0,
        "web_port": settings.web_port or 6066,  # Faust validates it even when disabled
        "web_bind": settings.web_host,
        "web_in_thread": False,
        "producer_acks": -1,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_commit_interval": settings.commit_interval_s,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_s / 3),
    }
    credentials = _credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    return conf


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    # The TLS context is built in one place (Settings) for Faust and the plain aiokafka clients.
    ssl_context = settings.kafka_client_options().get("ssl_context")
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context,
        )
    return SSLCredentials(context=ssl_context)
