"""The key metrics of a worker (`guardstream_state_keys*`): what each kind of keyed state
holds and turned away under its cap, over the partitions held now (shell)."""

from __future__ import annotations

from collections.abc import Sequence

from topics.catalog import INPUT_TOPICS
from workers.ingest.stage import IngestStage
from workers.kernels.key_cap import KeyCounts, StateKind
from workers.metrics import CardinalityCollector
from workers.settings import Settings
from workers.shell.wiring import WiredKernel


def cardinality_collector(
    settings: Settings, stage: IngestStage, kernels: Sequence[WiredKernel]
) -> CardinalityCollector:
    """`kernels` is read at every scrape (the worker appends to it while it is built)."""

    def counts() -> dict[str, KeyCounts]:
        held = {StateKind.DEDUP.value: KeyCounts(stage.tracked_ids(), 0, stage.forgotten_early())}
        for kernel in kernels:
            held[kernel.spec.state_kind.value] = kernel.key_counts()
        return held

    caps = settings.key_caps
    limits = {
        StateKind.BREAKERS.value: caps.breakers,
        StateKind.BUDGETS.value: caps.budgets,
        StateKind.SLOS.value: caps.slos,
        # One de-duplicator per input topic and partition.
        StateKind.DEDUP.value: settings.dedup_max_ids_per_partition
        * settings.input_partitions
        * len(INPUT_TOPICS),
    }
    return CardinalityCollector(counts, limits)
