"""The ingest stage: one call per partition batch, no I/O.

validate -> de-duplicate -> hand over. The Faust agent around it publishes the dead letters
and passes the accepted events to the sinks (the kernels' agents, in later stages). Dead
letters leave the stage masked (`dead_letter_masking`: reason, fields, key and value), so
neither the dead-letter topic nor the audit trail gets what a classifier detects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.clock import ClockTick
from schemas.events import InputEvent
from schemas.types import epoch_ms
from workers.batching.records import RawBatch
from workers.ingest.dead_letter_masking import masked_rejection
from workers.ingest.dedup import Deduplicator
from workers.ingest.validate import Rejected, Validated, validate_records
from workers.masking.masker import Masker, default_masker


@dataclass(frozen=True, slots=True)
class IngestResult:
    topic: str
    partition: int
    accepted: list[Validated]
    duplicates: int
    rejected: list[Rejected]


@dataclass(slots=True)
class IngestCounters:
    """Cumulative counts per physical topic; the metrics exporter reads these."""

    accepted: Counter[str] = field(default_factory=Counter)
    """Input events (clock ticks are counted apart: they are time, not traffic)."""
    clock_ticks: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, kind)

    def add(self, result: IngestResult) -> None:
        ticks = sum(1 for item in result.accepted if type(item.event) is ClockTick)
        self.accepted[result.topic] += len(result.accepted) - ticks
        if ticks:
            self.clock_ticks[result.topic] += ticks
        self.duplicates[result.topic] += result.duplicates
        for rejected in result.rejected:
            self.rejected[(result.topic, str(rejected.kind))] += 1


class IngestStage:
    def __init__(
        self,
        models_by_topic: Mapping[str, type[InputEvent]],
        *,
        dedup_horizon_ms: int,
        dedup_max_ids: int,
        masker: Masker | None = None,
    ) -> None:
        """`masker`: applied to dead letters (default: the built-in classification policy)."""
        self._models = dict(models_by_topic)
        self.masker = masker or default_masker()
        self._horizon_ms = dedup_horizon_ms
        self._max_ids = dedup_max_ids
        self._dedup: dict[tuple[str, int], Deduplicator] = {}
        self.counters = IngestCounters()

    @property
    def topics(self) -> list[str]:
        return list(self._models)

    def model_for(self, topic: str) -> type[InputEvent]:
        """The event model of `topic`'s records (control records announce their own)."""
        return self._models[topic]

    def process(self, batch: RawBatch) -> IngestResult:
        validated, refused = validate_records(batch.records, self.model_for(batch.topic))
        rejected = [masked_rejection(self.masker, item)[0] for item in refused]
        dedup = self._dedup_for(batch.topic, batch.partition)
        first_time = dedup.first_time
        accepted = [
            item for item in validated if first_time(item.event.event_id, epoch_ms(item.event.ts))
        ]
        result = IngestResult(
            topic=batch.topic,
            partition=batch.partition,
            accepted=accepted,
            duplicates=len(validated) - len(accepted),
            rejected=rejected,
        )
        self.counters.add(result)
        return result

    @property
    def dedup_horizon_ms(self) -> int:
        return self._horizon_ms

    @property
    def dedup_max_ids(self) -> int:
        return self._max_ids

    def remembers(self, topic: str, partition: int) -> bool:
        """Whether this stage holds de-duplication memory for the partition."""
        return (topic, partition) in self._dedup

    def recall(self, topic: str, partition: int, seen: Iterable[tuple[str, int]]) -> int:
        """Rebuild a partition's memory from ``(event_id, event_time_ms)`` already processed,
        in partition order (after a restart or a rebalance). Returns how many ids it kept."""
        dedup = self._dedup[(topic, partition)] = Deduplicator(self._horizon_ms, self._max_ids)
        for event_id, ts_ms in seen:
            dedup.first_time(event_id, ts_ms)
        return len(dedup)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's memory: while another worker owns it, it goes stale."""
        self._dedup.pop((topic, partition), None)

    def tracked_ids(self) -> int:
        return sum(len(dedup) for dedup in self._dedup.values())

    def forgotten_early(self) -> int:
        """Ids the per-partition cap dropped before their horizon ran out (for metrics)."""
        return sum(dedup.forgotten_early for dedup in self._dedup.values())

    def _dedup_for(self, topic: str, partition: int) -> Deduplicator:
        key = (topic, partition)
        dedup = self._dedup.get(key)
        if dedup is None:
            dedup = self._dedup[key] = Deduplicator(self._horizon_ms, self._max_ids)
        return dedup
