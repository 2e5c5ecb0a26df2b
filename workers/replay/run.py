"""Replay a stream of input lines through the same engines the agents use.

Each line is validated as the worker validates a record value (`ingest.input_lines.decode_event`:
the same caps, checks and reasons; an optional `type` field names the topic, else the fields
decide), duplicates within the de-duplication horizon are dropped as the ingest stage drops
them, and every accepted event goes through the engines in file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.clock import ClockTick
from schemas.stream import StreamEvent
from schemas.types import epoch_ms
from workers.decisions import Decision
from workers.errors import InvalidEventError
from workers.ingest.dedup import Deduplicator
from workers.ingest.input_lines import decode_event


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


class DecisionEngine(Protocol):
    """A kernel's shell as the agents and replay drive it (BreakerEngine, BudgetEngine)."""

    def apply(self, event: StreamEvent) -> list[Decision]: ...


class Replay:
    """Feeds numbered lines to the engines; iterate `run(lines)` for the decisions."""

    def __init__(
        self, engines: Sequence[DecisionEngine], *, dedup_horizon_ms: int, dedup_max_ids: int
    ) -> None:
        self.engines = engines
        self.counts = ReplayCounts()
        self._dedup = Deduplicator(dedup_horizon_ms, dedup_max_ids)

    @property
    def tracked_ids(self) -> int:
        """Event ids held for de-duplication (at most `dedup_max_ids`)."""
        return len(self._dedup)

    def run(self, lines: Iterable[tuple[int, bytes]]) -> Iterator[Decision]:
        counts = self.counts
        first_time = self._dedup.first_time
        engines = self.engines
        for number, line in lines:
            try:
                # A line is a record value as a producer sends it, without the line break: the
                # size cap and the canonical-form check see the same bytes the worker would.
                event = decode_event(line.rstrip(b"\r\n"))
            except InvalidEventError as exc:
                self._invalid(f"line {number}: {exc}")
                continue
            if not first_time(event.event_id, epoch_ms(event.ts)):
                counts.duplicates += 1
                continue
            if isinstance(event, ClockTick):
                counts.clock_ticks += 1
            else:
                counts.events += 1
            for engine in engines:
                for decision in engine.apply(event):
                    counts.decisions += 1
                    yield decision

    def _invalid(self, message: str) -> None:
        self.counts.invalid += 1
        if len(self.counts.errors) < MAX_REPORTED_ERRORS:
            self.counts.errors.append(message)
