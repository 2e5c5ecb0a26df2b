"""The worker-wide metric collectors: ingest, lost transactions, batch and commit timings,
alerts published by every kernel (shell)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from workers.batching import BatchingApp
from workers.ingest.stage import IngestStage
from workers.metrics import (
    AlertCountCollector,
    IngestCollector,
    MigrationCollector,
    TimingCollector,
)
from workers.shell.faust_settings import consumer_lag
from workers.shell.wiring import WiredKernel


def register_worker_collectors(
    registry: CollectorRegistry,
    app: BatchingApp,
    stage: IngestStage,
    kernels: Sequence[WiredKernel],
    last_batch: Callable[[], float | None],
) -> None:
    """`kernels` is read at each scrape (the kernels are wired after this call)."""
    registry.register(
        IngestCollector(stage.counters, stage.tracked_ids, lambda: consumer_lag(app), last_batch)
    )
    registry.register(MigrationCollector(lambda: app.migration.migrations))
    registry.register(TimingCollector(app.timings))
    registry.register(AlertCountCollector(lambda: (k.alert_counts() for k in kernels)))
