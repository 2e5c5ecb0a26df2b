"""The alert and the count for input batches the consumer could not decode.

`batching.undecodable` turns an undecodable record batch into a placeholder that the ingest
stage dead-letters (so the offset range is acknowledged, in the partition's transaction, and
recorded in the input audit trail like any dead-lettered input). This sink, run with the
other sinks on every ingested batch, adds what an operator needs on top: an
`undecodable_batch` alert (critical: governance did not see those events) and a count per
topic and codec for Prometheus.

The alert fires once per input partition on its first undecodable range, and resolves once
the partition has delivered decodable records for `RESOLVE_AFTER_MS` of record time after
its last undecodable range; further ranges while it fires are dead-lettered and counted, not
alerted again (a producer stuck on an unreadable codec would otherwise page per batch).
Which partitions fire lives in memory: a worker that restarts or loses the partition forgets
a firing alert instead of resolving it.

`UndecodableAlertBook` decides (pure); `UndecodableBatchAlerts` sends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, cast

import faust
from faust.types import TP

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.audit_names import INPUT_POLICY_VERSION
from schemas.codec import encode
from schemas.types import EPOCH_MS_MAX, Severity, from_epoch_ms
from topics.catalog import TopicCatalog, TopicName
from workers.batching.outputs import BatchOutputs
from workers.batching.undecodable import UndecodableRecord
from workers.ingest.stage import IngestResult

ALERT_KIND: Final = "undecodable_batch"
# Five minutes of clean record time: long enough for Alertmanager to notify (its group_wait
# is 30 s by default), short enough to end with the incident.
RESOLVE_AFTER_MS: Final = 5 * 60 * 1000

Slot = tuple[str, int]  # input topic, partition


@dataclass(slots=True)
class _Firing:
    alert: Alert
    last: UndecodableRecord
    """The latest undecodable range while the alert fires."""


class UndecodableAlertBook:
    """Which input partitions have an `undecodable_batch` alert firing, and the counts."""

    def __init__(self) -> None:
        self._firing: dict[Slot, _Firing] = {}
        self.batches: Counter[tuple[str, str]] = Counter()
        """Undecodable ranges dead-lettered, by (input topic, codec)."""

    def alerts_for(self, result: IngestResult) -> list[Alert]:
        """The alerts one ingested batch fires or resolves, in that order."""
        slot = (result.topic, result.partition)
        undecodable = [
            rejected.record
            for rejected in result.rejected
            if isinstance(rejected.record, UndecodableRecord)
        ]
        if not undecodable and slot not in self._firing:
            return []  # the common case: one scan of the (usually empty) dead letters
        alerts: list[Alert] = []
        for placeholder in sorted(undecodable, key=lambda record: record.offset):
            self.batches[(placeholder.topic, placeholder.batch.codec)] += 1
            firing = self._firing.get(slot)
            if firing is None:
                alert = _firing_alert(placeholder)
                self._firing[slot] = _Firing(alert, placeholder)
                alerts.append(alert)
            else:
                firing.last = placeholder
        resolved = self._resolution(slot, result)
        if resolved is not None:
            del self._firing[slot]
            alerts.append(resolved)
        return alerts

    def forget_partition(self, topic: str, partition: int) -> None:
        self._firing.pop((topic, partition), None)

    def _resolution(self, slot: Slot, result: IngestResult) -> Alert | None:
        firing = self._firing.get(slot)
        if firing is None:
            return None
        after_offset = firing.last.offset
        clean_from_ms = firing.last.timestamp + RESOLVE_AFTER_MS
        decodable = [item.record for item in result.accepted] + [
            rejected.record
            for rejected in result.rejected
            if not isinstance(rejected.record, UndecodableRecord)
        ]
        clean = [
            record.timestamp
            for record in decodable
            if record.offset > after_offset and clean_from_ms <= record.timestamp <= EPOCH_MS_MAX
        ]
        if not clean:
            return None
        at_ms = min(clean)
        alert = firing.alert
        return alert.model_copy(
            update={
                "alert_id": f"{alert.fingerprint}-{at_ms}-resolved",
                "status": AlertStatus.RESOLVED,
                "ends_at": max(from_epoch_ms(at_ms), alert.starts_at),
            }
        )


def _firing_alert(placeholder: UndecodableRecord) -> Alert:
    batch = placeholder.batch
    return firing_alert(
        ALERT_KIND,
        {"topic": batch.topic, "partition": str(batch.partition)},
        severity=Severity.CRITICAL,
        summary=batch.describe(),
        at_ms=placeholder.timestamp,
        policy_version=INPUT_POLICY_VERSION,
        value=float(batch.offsets),
        extra={
            "codec": batch.codec,
            "first_offset": str(batch.first_offset),
            "last_offset": str(batch.last_offset),
        },
    )


class UndecodableBatchAlerts:
    """An EventSink: sends the book's alerts in the batch's own transaction."""

    def __init__(self, app: faust.App, catalog: TopicCatalog) -> None:
        self._outputs = BatchOutputs(app)
        self._alert_topic = catalog.name(TopicName.ALERTS)
        self.book = UndecodableAlertBook()
        app.on_partitions_revoked.connect(cast(Any, self._forget_revoked))

    def counts(self) -> Counter[tuple[str, str]]:
        return self.book.batches

    async def handle(self, result: IngestResult) -> None:
        source = (result.topic, result.partition)
        for alert in self.book.alerts_for(result):
            key = alert.fingerprint.encode()
            await self._outputs.send(source, self._alert_topic, key, encode(alert))

    async def _forget_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        for tp in revoked:
            self.book.forget_partition(tp.topic, tp.partition)
