"""The Faust app factory: settings and policies in, a configured worker app out.

Composition only: topics from the catalog, the ingest agent around the pure `IngestStage`
(`shell.ingest`: dead letters out, accepted events on to the sinks), the input audit, then
every decision kernel of `kernel_set.KERNELS` the policies enable, each wired the same way
from its `KernelSpec` (`shell.wiring`), the clock ticker and the web pages (`shell.web`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CollectorRegistry

from schemas.events import INPUT_EVENT_TYPES, InputEvent
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from workers.audit.data_risk import DataRiskRules
from workers.audit.inputs import InputAuditSink
from workers.audit.policy_writer import record_policy_changes
from workers.batching import BatchingApp, BatchTopic, RawBatch
from workers.batching.runner import run_batches
from workers.clock_ticker import register_clock_ticker
from workers.ingest.stage import IngestStage
from workers.ingest.undecodable import UndecodableBatchAlerts
from workers.kernel_set import KERNELS
from workers.masking.log_filter import install_log_masking
from workers.masking.masker import Masker
from workers.metrics import UndecodableBatchCollector
from workers.policies.audit_event_types import AuditPolicy, default_audit_policy
from workers.policies.policy_set import PolicySet
from workers.settings import AuditLevel, ProcessingGuarantee, Settings
from workers.shell.collectors import register_worker_collectors
from workers.shell.faust_settings import faust_settings
from workers.shell.ingest import EventSink, IngestBatches
from workers.shell.key_metrics import cardinality_collector
from workers.shell.snapshots import SnapshotStore
from workers.shell.spec import KernelSpec
from workers.shell.web import register_web_pages
from workers.shell.wiring import WiredKernel, wire_kernel

log = logging.getLogger(__name__)

# Batches waiting per agent queue; bounds memory to ~MAX_POLL_RECORDS (faust_settings) x this
# many records.
BATCH_QUEUE_MAXSIZE = 8


@dataclass(slots=True)
class Worker:
    """Everything the CLI and tests need to run and observe one guardstream worker."""

    settings: Settings
    catalog: TopicCatalog
    app: BatchingApp
    stage: IngestStage
    registry: CollectorRegistry
    sinks: list[EventSink] = field(default_factory=list)
    """Where each ingested batch goes, in order: the input audit, then the kernels."""
    kernels: list[WiredKernel] = field(default_factory=list)
    input_audit: InputAuditSink | None = None
    snapshots: SnapshotStore | None = None
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
    settings: Settings, policies: PolicySet, kernels: Sequence[KernelSpec[Any]] = KERNELS
) -> Worker:
    """The worker app: the ingest agent, then every kernel of `kernels` the policies enable.
    The classification policy's PII/PHI patterns are masked in the audit trail, alerts and
    logs."""
    catalog = catalog_for(settings, policies.audit)
    app = BatchingApp(settings.app_id, **faust_settings(settings))
    app.transaction_timeout_ms = int(settings.transaction_timeout_s * 1000)
    models: Mapping[str, type[InputEvent]] = {
        catalog.name(topic): INPUT_EVENT_TYPES[str(topic)] for topic in INPUT_TOPICS
    }
    masker = Masker(policies.classification)
    stage = IngestStage(
        models,
        dedup_horizon_ms=int(settings.dedup_horizon_s * 1000),
        dedup_max_ids=settings.dedup_max_ids_per_partition,
        masker=masker,  # dead letters leave the stage masked by the policy's detectors
    )
    registry = CollectorRegistry()
    worker = Worker(settings, catalog, app, stage, registry)
    register_worker_collectors(
        registry, app, stage, worker.kernels, lambda: worker.last_batch_unixtime
    )
    _register_log_masking(app, masker)
    client_options = settings.kafka_client_options()
    level = settings.effective_audit_level
    worker.input_audit = InputAuditSink(
        app,
        catalog,
        level,
        client_options,
        masker,
        policies.audit,
        DataRiskRules.from_policies(policies, masker),
    )
    undecodable = UndecodableBatchAlerts(app, catalog)
    worker.sinks += [worker.input_audit, undecodable]
    registry.register(UndecodableBatchCollector(undecodable.counts))
    worker.snapshots = SnapshotStore.for_worker(settings, catalog, policies)
    _wire_kernels(worker, kernels, policies, masker)
    registry.register(cardinality_collector(settings, stage, worker.kernels))
    _register_policy_trail(worker, policies, masker)
    _register_ingest_agent(worker)
    register_clock_ticker(app, settings, catalog)
    register_web_pages(app, settings, registry, worker.kernels, kernels, stage.counters)
    return worker


def _wire_kernels(
    worker: Worker, kernels: Sequence[KernelSpec[Any]], policies: PolicySet, masker: Masker
) -> None:
    """Each kernel the policies enable, wired from its spec, in order after the input audit."""
    settings = worker.settings
    for spec in kernels:
        if spec.enabled(policies):
            wired = wire_kernel(
                worker.app,
                worker.catalog,
                spec,
                policies,
                client_options=settings.kafka_client_options(),
                caps=settings.key_caps,
                masker=masker,
                queue_size=BATCH_QUEUE_MAXSIZE,
                snapshots=worker.snapshots,
            )
            worker.kernels.append(wired)
            worker.sinks.append(wired)
            collector = wired.collector()
            if collector is not None:
                worker.registry.register(collector)


def _trail_is_truth(settings: Settings) -> bool:
    """Exactly-once with the forensic audit level: the trail holds every input a committed
    batch processed, so a worker can skip what it holds and rebuild state from it."""
    return (
        settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        and settings.effective_audit_level is AuditLevel.FORENSIC
    )


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


def _register_ingest_agent(worker: Worker) -> None:
    app, settings = worker.app, worker.settings
    batches = IngestBatches(
        app,
        worker.catalog,
        worker.stage,
        worker.sinks,
        settings.kafka_client_options(),
        skip_recorded=_trail_is_truth(settings),
        taking_over=worker.kernels,
        snapshots=worker.snapshots,
    )

    async def ingest_batch(batch: RawBatch) -> None:
        await batches.handle(batch)
        worker.last_batch_unixtime = time.time()

    async def ingest(stream: faust.StreamT[RawBatch]) -> None:
        await run_batches(app, stream, ingest_batch)

    inputs = BatchTopic(app, topics=worker.stage.topics, maxsize=BATCH_QUEUE_MAXSIZE)
    app.agent(inputs, name="guardstream.ingest", concurrency=1)(ingest)

    async def forget_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))
        for tp in revoked:
            batches.forget(tp.topic, tp.partition)
            if worker.input_audit is not None:
                worker.input_audit.forget_partition(tp.partition)
            for kernel in worker.kernels:
                kernel.forget(tp.topic, tp.partition)

    app.on_partitions_revoked.connect(cast(Any, forget_revoked))
