"""One `slo-counts` partition's counting (pure): routed rows back in event-time order under
the low watermark of the input partitions, into an `SloEngine`.

The agent (`sink.SloCounter`) feeds it the raw records of its partition and publishes what
comes out; tests feed it the same bytes without Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError

from schemas.clock import ClockTick
from schemas.slo_counts import SloCounts
from schemas.watermark import SourceWatermark
from workers.decisions import Decision
from workers.policies.slos import SloPolicy
from workers.routed.reorder import Source, WatermarkReorder
from workers.slos.engine import SloEngine
from workers.slos.records import SloItem, items_of

log = logging.getLogger(__name__)


class SloCounting:
    def __init__(self, policy: SloPolicy, sources: Iterable[Source]) -> None:
        self.engine = SloEngine(policy)
        self._buffer: WatermarkReorder[SloItem] = WatermarkReorder(sources)
        self.unreadable = 0

    def apply(self, raw: bytes) -> list[Decision]:
        """One record of the partition: hold routed rows, or count what a watermark releases
        and let time reach it."""
        buffer, engine = self._buffer, self.engine
        try:
            if b'"watermark"' in raw:
                mark = SourceWatermark.model_validate_json(raw)
            else:
                record = SloCounts.model_validate_json(raw)
                source = (record.source_topic, record.source_partition)
                buffer.add(source, items_of(record, engine.targets))
                return []
        except ValidationError as exc:
            # Only guardstream writes this topic: a bad record is a bug, not user input.
            self.unreadable += 1
            log.error("unreadable slo-counts record skipped: %s", exc)
            return []
        before = buffer.low_watermark_ms
        decisions: list[Decision] = []
        for item in buffer.watermark((mark.source_topic, mark.source_partition), mark.ts_ms):
            decisions += engine.measure(item)
        low = buffer.low_watermark_ms
        if low is not None and low != before:
            # Everything below `low` is counted: the seconds before low's are complete.
            decisions += engine.advance(low, ClockTick.at(low).event_id)
        return decisions
