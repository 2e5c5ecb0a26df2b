"""Replay a stream of input lines through the pipeline the worker runs (`replay --input`).

Each line is validated as the worker validates a record value (`ingest.input_lines.decode_event`:
the same caps, checks and reasons; an optional `type` field names the topic, else the fields
decide), duplicates within the de-duplication horizon are dropped as the ingest stage drops
them, and the accepted events go through `PipelineReplay.for_file` in file order, in batches of
consecutive events of one topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from schemas.clock import ClockTick
from schemas.stream import StreamEvent
from schemas.types import epoch_ms
from topics.catalog import TopicName
from topics.publish import topic_for
from workers.decisions import Decision
from workers.errors import InvalidEventError
from workers.ingest.dedup import Deduplicator
from workers.ingest.input_lines import decode_event
from workers.replay.pipeline import PipelineReplay


@dataclass(slots=True)
class ReplayCounts:
    events: int = 0
    clock_ticks: int = 0
    duplicates: int = 0
    invalid: int = 0
    decisions: int = 0
    errors: list[str] = field(default_factory=list)
    """The first invalid lines' messages (line number first), for the summary."""


MAX_REPORTED_ERRORS = 20


FILE_BATCH = 1024
"""At most this many events are fed to the pipeline at once. A batch also ends where the
file's event time enters a new second: a routed kernel's time then moves second by second,
so what the file decides does not depend on how it is cut into batches."""


class Replay:
    """Feeds numbered lines to a file's pipeline (`PipelineReplay.for_file`); iterate
    `run(lines)` for the decisions."""

    def __init__(
        self,
        pipeline: PipelineReplay,
        *,
        dedup_horizon_ms: int,
        dedup_max_ids: int,
        batch: int = FILE_BATCH,
    ) -> None:
        """`batch`: events per batch at most (1: the decisions of each line before the next
        is read; the decisions are the same, their order across kernels is not)."""
        self.pipeline = pipeline
        self.counts = ReplayCounts()
        self._dedup = Deduplicator(dedup_horizon_ms, dedup_max_ids)
        self._batch = batch
        self._topics: dict[type[StreamEvent], str] = {}  # an event's type -> its topic

    @property
    def tracked_ids(self) -> int:
        """Event ids held for de-duplication (at most `dedup_max_ids`)."""
        return len(self._dedup)

    def run(self, lines: Iterable[tuple[int, bytes]]) -> Iterator[Decision]:
        counts = self.counts
        first_time = self._dedup.first_time
        topics, size = self._topics, self._batch
        pending: list[tuple[str, StreamEvent]] = []
        pending_second = 0
        for number, line in lines:
            try:
                # A line is a record value as a producer sends it, without the line break: the
                # size cap and the canonical-form check see the same bytes the worker would.
                event = decode_event(line.rstrip(b"\r\n"))
            except InvalidEventError as exc:
                self._invalid(f"line {number}: {exc}")
                continue
            event_ms = epoch_ms(event.ts)
            if not first_time(event.event_id, event_ms):
                counts.duplicates += 1
                continue
            if isinstance(event, ClockTick):
                counts.clock_ticks += 1
            else:
                counts.events += 1
            second = event_ms // 1000
            if pending and second != pending_second:
                yield from self._decide(pending)
                pending = []
            pending.append((topics.get(type(event)) or self._topic_of(event), event))
            pending_second = second
            if len(pending) >= size:
                yield from self._decide(pending)
                pending = []
        if pending:
            yield from self._decide(pending)

    def _topic_of(self, event: StreamEvent) -> str:
        """The topic `publish` sends `event` to (a clock tick: tool-invocations, whose ticks
        move every kernel's time)."""
        kind = topic_for(event) if not isinstance(event, ClockTick) else TopicName.TOOL_INVOCATIONS
        topic = self._topics[type(event)] = self.pipeline.catalog.name(kind)
        return topic

    def _decide(self, events: list[tuple[str, StreamEvent]]) -> Iterator[Decision]:
        decisions = self.pipeline.stream(events)
        self.counts.decisions += len(decisions)
        yield from decisions

    def _invalid(self, message: str) -> None:
        self.counts.invalid += 1
        if len(self.counts.errors) < MAX_REPORTED_ERRORS:
            self.counts.errors.append(message)
