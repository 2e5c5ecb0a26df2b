"""Event-id de-duplication within an event-time horizon (one instance per input partition).

Pure data structure: no clock, no I/O. Time is the partition's own watermark (the highest event
time seen), so replaying the same records gives the same verdicts.

Guarantee: a repeated ``event_id`` whose first copy is at most ``horizon_ms`` older (in event
time) than the partition's watermark is reported as a duplicate, as long as fewer than
``max_ids`` ids are held; past that cap the oldest-seen ids are forgotten first, so memory per
partition is bounded whatever the traffic. Expiry walks ids in arrival order and stops at the
first one still inside the horizon, so an out-of-order event can keep later ones a little
longer than the horizon - never shorter.

Memory is bounded by ``max_ids`` (GUARDSTREAM_DEDUP_MAX_IDS_PER_PARTITION), whatever the
producers send: per id a dict entry (id -> event time) and a slot in the arrival queue, about
110 bytes plus the id string itself (the event's own, 49 bytes plus its length in ASCII; ids
are at most MAX_ID_LEN characters). `bench.cardinality --dedup` measures it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Deduplicator:
    horizon_ms: int
    max_ids: int
    watermark_ms: int | None = None
    _seen: dict[str, int] = field(default_factory=dict)  # id -> event time of its first copy
    _arrival: deque[str] = field(default_factory=deque)  # ids, oldest first
    forgotten_early: int = 0  # ids dropped by the cap before their horizon ran out

    def __post_init__(self) -> None:
        if self.horizon_ms <= 0:
            raise ValueError(f"horizon_ms must be > 0, got {self.horizon_ms}")
        if self.max_ids <= 0:
            raise ValueError(f"max_ids must be > 0, got {self.max_ids}")

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, event_id: str, ts_ms: int) -> bool:
        """Record ``event_id``; False when it was already seen within the horizon."""
        if event_id in self._seen:
            return False
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms
            self._expire(ts_ms - self.horizon_ms)
        self._seen[event_id] = ts_ms
        self._arrival.append(event_id)
        if len(self._arrival) > self.max_ids:
            oldest_ts_ms = self._seen.pop(self._arrival.popleft())
            if oldest_ts_ms >= self.watermark_ms - self.horizon_ms:
                self.forgotten_early += 1
        return True

    def _expire(self, cutoff_ms: int) -> None:
        arrival, seen = self._arrival, self._seen
        while arrival and seen[arrival[0]] < cutoff_ms:
            del seen[arrival.popleft()]
