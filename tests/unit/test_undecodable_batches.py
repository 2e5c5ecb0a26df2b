"""Undecodable record batches are reported and skipped, not raised (`batching.undecodable`).

The batches are real Kafka v2 record batches built by aiokafka's own builder, then broken the
ways a consumer meets them: a codec whose library is missing, a codec id it does not know, a
corrupt compressed payload under a valid CRC, a CRC that does not match. aiokafka's own
reader (`PartitionRecords`, what the consumer drains) reads them through the checking buffer.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

import pytest
from aiokafka import codec as aiokafka_codec
from aiokafka.consumer.fetcher import READ_COMMITTED, READ_UNCOMMITTED, PartitionRecords
from aiokafka.errors import UnsupportedCodecError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from faust.types import TP

from schemas.dead_letter import DeadLetterKind
from workers.batching.undecodable import (
    UndecodableBatch,
    UndecodableRecord,
    _CheckedResults,
    take_all,
    with_placeholders,
)

TOPIC = "t.tool-invocations"
TPART = TopicPartition(TOPIC, 3)
NONE, GZIP, LZ4, ZSTD = 0, 1, 3, 4
# Offsets in a v2 batch header (KIP-98): the CRC covers everything from the attributes on.
CRC_AT, ATTRIBUTES_AT = 17, 21
PRODUCER_ID = 7


def batch(
    first_offset: int, count: int, codec: int, *, producer_id: int = -1, ts_ms: int = 1000
) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=int(producer_id >= 0),
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=0 if producer_id >= 0 else -1,
        batch_size=1 << 20,
    )
    for delta in range(count):
        value = b'{"n": %d, "pad": "%s"}' % (first_offset + delta, b"x" * 64)
        builder.append(delta, timestamp=ts_ms + delta, key=None, value=value, headers=[])
    raw = bytearray(builder.build())
    raw[0:8] = struct.pack(">q", first_offset)  # the broker assigns the base offset
    return bytes(raw)


def with_crc(raw: bytes) -> bytes:
    fixed = bytearray(raw)
    fixed[CRC_AT:ATTRIBUTES_AT] = struct.pack(">I", calc_crc32c(bytes(raw[ATTRIBUTES_AT:])))
    return bytes(fixed)


def garbled_payload(raw: bytes) -> bytes:
    """The compressed records overwritten with junk, under a CRC that matches again."""
    junk = bytearray(raw)
    junk[-40:] = b"\xff" * 40
    return with_crc(bytes(junk))


def unknown_codec(raw: bytes, codec_id: int = 5) -> bytes:
    changed = bytearray(raw)
    (attributes,) = struct.unpack_from(">h", changed, ATTRIBUTES_AT)
    struct.pack_into(">h", changed, ATTRIBUTES_AT, (attributes & ~0x07) | codec_id)
    return with_crc(bytes(changed))


def bad_crc(raw: bytes) -> bytes:
    flipped = bytearray(raw)
    flipped[-1] ^= 0x01
    return bytes(flipped)


def partition_records(payload: bytes, *, aborted: list[tuple[int, int]] | None = None) -> Any:
    return PartitionRecords(
        TPART,
        MemoryRecords(payload),
        aborted,
        0,  # fetch offset
        None,
        None,
        True,  # check_crcs, as Faust configures it
        READ_COMMITTED if aborted is not None else READ_UNCOMMITTED,
    )


class _FetchResult:
    """What the fetcher stores per partition; only its records matter to the buffer."""

    def __init__(self, records: Any) -> None:
        self._partition_records = records


def read_checked(payload: bytes, **kwargs: Any) -> tuple[list[int], list[UndecodableBatch]]:
    """Offsets aiokafka's reader yields through the checking buffer, and what it reported."""
    found: deque[UndecodableBatch] = deque()
    buffer = _CheckedResults(found.append)
    records = partition_records(payload, **kwargs)
    buffer[TPART] = _FetchResult(records)
    offsets = [record.offset for record in records]
    assert records.next_fetch_offset == 10  # aiokafka's position moved past everything
    return offsets, take_all(found)


GOOD_BEFORE, GOOD_AFTER = batch(0, 3, NONE), batch(6, 4, GZIP)
LZ4_BATCH = batch(3, 3, LZ4, ts_ms=5000)
ABORTED_LZ4_BATCH = batch(3, 3, LZ4, producer_id=PRODUCER_ID)
FAR_FUTURE_LZ4_BATCH = batch(3, 3, LZ4, ts_ms=2**62)  # a producer's CreateTime: any int64


@pytest.fixture
def no_cramjam(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without the codec library (aiokafka.codec imports cramjam optionally)."""
    monkeypatch.setattr(aiokafka_codec, "cramjam", None)


def test_without_the_check_one_lz4_batch_stops_the_reader(no_cramjam: None) -> None:
    # The reproducer: what the worker met (its drain raised, and did again on every restart).
    records = partition_records(GOOD_BEFORE + LZ4_BATCH + GOOD_AFTER)
    with pytest.raises(UnsupportedCodecError, match="lz4"):
        list(records)


def test_a_missing_codec_library_skips_the_batch_and_reports_its_range(no_cramjam: None) -> None:
    offsets, found = read_checked(GOOD_BEFORE + LZ4_BATCH + GOOD_AFTER)
    assert offsets == [0, 1, 2, 6, 7, 8, 9]  # the good batches on both sides, in order
    assert found == [
        UndecodableBatch(
            topic=TOPIC,
            partition=3,
            first_offset=3,
            last_offset=5,
            codec="lz4",
            error="UnsupportedCodecError: Libraries for lz4 compression codec not found",
            timestamp_ms=5000,
        )
    ]


@pytest.mark.parametrize(
    ("broken", "codec", "error"),
    [
        pytest.param(garbled_payload(batch(3, 3, LZ4)), "lz4", "DecompressionError", id="lz4"),
        pytest.param(garbled_payload(batch(3, 3, ZSTD)), "zstd", "DecompressionError", id="zstd"),
        pytest.param(garbled_payload(batch(3, 3, GZIP)), "gzip", "Error", id="gzip"),
        pytest.param(
            unknown_codec(batch(3, 3, NONE)),
            "unknown codec id 5",
            "UnsupportedCodecError: Unknown compression codec 0x05",
            id="unknown-codec",
        ),
        pytest.param(bad_crc(batch(3, 3, NONE)), "none", "CorruptRecordException", id="crc"),
    ],
)
def test_a_broken_batch_is_reported_with_its_codec_and_error(
    broken: bytes, codec: str, error: str
) -> None:
    offsets, [found] = read_checked(GOOD_BEFORE + broken + GOOD_AFTER)
    assert offsets == [0, 1, 2, 6, 7, 8, 9]
    assert (found.first_offset, found.last_offset, found.codec) == (3, 5, codec)
    assert error in found.error
    assert "\n" not in found.error


def test_a_batch_stamped_past_year_9999_is_reported_without_a_time(no_cramjam: None) -> None:
    _, [found] = read_checked(GOOD_BEFORE + FAR_FUTURE_LZ4_BATCH + GOOD_AFTER)
    assert found.timestamp_ms is None
    assert found.dead_letter().record_ts is None


def test_an_aborted_transactions_batch_is_skipped_without_decoding(no_cramjam: None) -> None:
    # Never visible to a read_committed reader: nothing to dead-letter, nothing to report.
    offsets, found = read_checked(
        GOOD_BEFORE + ABORTED_LZ4_BATCH + GOOD_AFTER, aborted=[(PRODUCER_ID, 3)]
    )
    assert offsets == [0, 1, 2, 6, 7, 8, 9]
    assert found == []


def test_a_fetch_starting_inside_the_batch_reports_from_the_fetch_offset(
    no_cramjam: None,
) -> None:
    found: deque[UndecodableBatch] = deque()
    buffer = _CheckedResults(found.append)
    records = PartitionRecords(
        TPART, MemoryRecords(LZ4_BATCH), None, 4, None, None, True, READ_UNCOMMITTED
    )
    buffer[TPART] = _FetchResult(records)
    assert list(records) == []
    [reported] = found
    assert (reported.first_offset, reported.last_offset) == (4, 5)


def test_the_placeholder_dead_letters_the_range_at_its_last_offset() -> None:
    undecodable = UndecodableBatch(TOPIC, 3, 3, 5, "lz4", "UnsupportedCodecError: x", 5000)
    letter = undecodable.dead_letter(expected_type="ToolInvocation")
    assert (letter.topic, letter.partition, letter.offset) == (TOPIC, 3, 5)
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert letter.error == (
        f"undecodable record batch in {TOPIC}[3], offsets 3-5 (3 offsets, codec lz4): "
        "UnsupportedCodecError: x"
    )
    assert letter.expected_type == "ToolInvocation"
    placeholder = undecodable.placeholder()
    assert (placeholder.offset, placeholder.value, placeholder.key) == (5, None, None)


def test_placeholders_take_their_place_among_the_fetched_records() -> None:
    class Record:
        def __init__(self, offset: int) -> None:
            self.offset = offset

    fetched: dict[Any, list[Any]] = {TP(TOPIC, 3): [Record(0), Record(1), Record(9)]}
    middle = UndecodableBatch(TOPIC, 3, 2, 8, "lz4", "e", None).placeholder()
    alone = UndecodableBatch(TOPIC, 4, 0, 4, "zstd", "e", None).placeholder()
    merged = with_placeholders(fetched, [middle, alone])
    assert [r.offset for r in merged[TP(TOPIC, 3)]] == [0, 1, 8, 9]
    assert merged[TP(TOPIC, 4)] == [alone]
    # Faust commits a partition's offsets under this key: aiokafka takes TopicPartition only.
    assert {type(tp) for tp in merged if tp.partition == 4} == {TopicPartition}
    assert isinstance(merged[TP(TOPIC, 3)][2], UndecodableRecord)
    assert [r.offset for r in fetched[TP(TOPIC, 3)]] == [0, 1, 9]  # the input is left alone
