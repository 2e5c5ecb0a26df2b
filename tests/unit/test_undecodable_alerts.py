"""An undecodable batch through the ingest stage: one dead letter for its range, and an
`undecodable_batch` alert that fires once per partition and resolves after a clean spell."""

from __future__ import annotations

import orjson

from schemas.alerts import AlertStatus
from schemas.dead_letter import DeadLetterKind
from schemas.events import ToolInvocation
from schemas.types import Severity, epoch_ms, rfc3339_ms
from workers.batching.records import RawBatch, RawRecord, StoredRecord
from workers.batching.undecodable import UndecodableBatch
from workers.ingest.stage import IngestResult, IngestStage
from workers.ingest.undecodable import ALERT_KIND, RESOLVE_AFTER_MS, UndecodableAlertBook

TOPIC = "t.tool-invocations"
T0_MS = 1_795_000_000_000
LZ4_ERROR = "UnsupportedCodecError: Libraries for lz4 compression codec not found"


def invocation(
    offset: int, *, ts_ms: int, partition: int = 0, far_future: int | None = None
) -> StoredRecord:
    """A valid invocation at event time `ts_ms`, its record time `far_future` when given."""
    document = {
        "event_id": f"e-{partition}-{offset}",
        "ts": rfc3339_ms(ts_ms),
        "vendor": "openai",
        "tool": "chat",
        "status": "success",
        "duration_ms": 10,
    }
    record_ms = ts_ms if far_future is None else far_future
    return StoredRecord(TOPIC, partition, offset, record_ms, None, orjson.dumps(document))


def undecodable(first: int, last: int, *, ts_ms: int, partition: int = 0) -> RawRecord:
    return UndecodableBatch(TOPIC, partition, first, last, "lz4", LZ4_ERROR, ts_ms).placeholder()


def ingest(stage: IngestStage, *records: RawRecord, partition: int = 0) -> IngestResult:
    return stage.process(RawBatch(TOPIC, partition, list(records)))


def new_stage() -> IngestStage:
    return IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=1000)


def test_the_range_is_one_dead_letter_at_its_last_offset_among_the_batchs_records() -> None:
    result = ingest(
        new_stage(),
        invocation(0, ts_ms=T0_MS),
        undecodable(1, 10, ts_ms=T0_MS),
        invocation(11, ts_ms=T0_MS),
    )
    assert [item.record.offset for item in result.accepted] == [0, 11]
    [rejected] = result.rejected
    letter = rejected.dead_letter
    assert (letter.offset, letter.error_kind) == (10, DeadLetterKind.UNDECODABLE)
    assert letter.expected_type == "ToolInvocation"
    assert letter.error == (
        f"undecodable record batch in {TOPIC}[0], offsets 1-10 (10 offsets, codec lz4): {LZ4_ERROR}"
    )
    assert letter.record_ts is not None
    assert epoch_ms(letter.record_ts) == T0_MS


def test_the_alert_fires_once_per_partition_and_resolves_after_a_clean_spell() -> None:
    stage, book = new_stage(), UndecodableAlertBook()
    # 1. The first undecodable range fires the partition's alert.
    [firing] = book.alerts_for(ingest(stage, undecodable(0, 9, ts_ms=T0_MS)))
    assert (firing.kind, firing.status, firing.severity) == (
        ALERT_KIND,
        AlertStatus.FIRING,
        Severity.CRITICAL,
    )
    assert firing.labels == {
        "topic": TOPIC,
        "partition": "0",
        "codec": "lz4",
        "first_offset": "0",
        "last_offset": "9",
    }
    assert firing.value == 10
    # 2. A second range while it fires: counted, not alerted again.
    later_ms = T0_MS + 1000
    assert book.alerts_for(ingest(stage, undecodable(10, 19, ts_ms=later_ms))) == []
    assert book.batches == {(TOPIC, "lz4"): 2}
    # 3. Decodable records soon after the last range do not resolve it yet...
    soon = invocation(20, ts_ms=later_ms + RESOLVE_AFTER_MS - 1)
    assert book.alerts_for(ingest(stage, soon)) == []
    # 4. ...the first one RESOLVE_AFTER_MS after it does, once.
    clean_ms = later_ms + RESOLVE_AFTER_MS
    [resolved] = book.alerts_for(ingest(stage, invocation(21, ts_ms=clean_ms)))
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.ends_at is not None
    assert epoch_ms(resolved.ends_at) == clean_ms
    assert book.alerts_for(ingest(stage, invocation(22, ts_ms=clean_ms + 1))) == []


def test_partitions_alert_apart_and_a_forgotten_partition_fires_afresh() -> None:
    stage, book = new_stage(), UndecodableAlertBook()
    [first] = book.alerts_for(ingest(stage, undecodable(0, 4, ts_ms=T0_MS)))
    [other] = book.alerts_for(
        ingest(stage, undecodable(0, 4, ts_ms=T0_MS, partition=1), partition=1)
    )
    assert first.fingerprint != other.fingerprint
    book.forget_partition(TOPIC, 0)  # revoked: whoever owns it next decides
    assert len(book.alerts_for(ingest(stage, undecodable(5, 9, ts_ms=T0_MS)))) == 1


def test_batches_without_undecodable_ranges_produce_nothing() -> None:
    stage, book = new_stage(), UndecodableAlertBook()
    assert book.alerts_for(ingest(stage, invocation(0, ts_ms=T0_MS))) == []
    assert book.batches == {}


def test_a_record_time_beyond_year_9999_does_not_resolve_nor_break_the_alert() -> None:
    # Producers set CreateTime to any int64: such a record is no evidence of a clean spell.
    stage, book = new_stage(), UndecodableAlertBook()
    assert len(book.alerts_for(ingest(stage, undecodable(0, 4, ts_ms=T0_MS)))) == 1
    far = invocation(5, ts_ms=T0_MS, far_future=2**62)
    assert book.alerts_for(ingest(stage, far)) == []
