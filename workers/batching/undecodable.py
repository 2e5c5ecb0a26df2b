"""Record batches the consumer cannot decode become dead letters instead of a crash loop.

aiokafka decodes a fetched record batch (CRC, decompression, record framing) only when the
records are drained, and it raises out of the drain: `UnsupportedCodecError` when the codec's
library is missing or the codec id is unknown, a decompressor's own error when the payload is
corrupt, `CorruptRecordException` when the CRC does not match. The consumer's position never
moves past such a batch, so the worker crashed on it, and again on every restart (a poison
batch). DESIGN §10: nothing that arrives on a topic may stop the worker.

Policy: the offset range of an undecodable batch is dead-lettered and the partition moves on.
`tolerate_undecodable_batches` makes a consumer decode each batch whole before aiokafka reads
it; a batch that fails is reported (`UndecodableBatch`: topic, partition, offset range, codec,
error) and read as empty, so aiokafka's position moves past it like past a control batch. The
batching consumer puts an `UndecodableRecord` in its place, at the range's last offset: the
ingest stage dead-letters it (`dead_letter`), the batch's acknowledgement covers the range, and
the input audit trail records it like any dead-lettered input. The batch itself stays in the
topic until retention: the dead letter names the range to read again once it can be decoded.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CorruptRecordException
from aiokafka.structs import TopicPartition

from schemas.dead_letter import DeadLetter, DeadLetterKind
from schemas.types import EPOCH_MS_MAX

# Kafka's codec ids (the low three bits of a batch's attributes).
CODEC_NAMES: Final[Mapping[int, str]] = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
# Decoder messages can be long (cramjam lists frames); the reason stays one short line.
MAX_ERROR_CHARS: Final = 200
# Kafka's TimestampType.LOG_APPEND_TIME: the broker wrote max_timestamp into every record.
_LOG_APPEND_TIME: Final = 1


def codec_name(codec_id: int | None) -> str:
    if codec_id is None:
        return "unknown"
    return CODEC_NAMES.get(codec_id, f"unknown codec id {codec_id}")


@dataclass(frozen=True, slots=True)
class UndecodableBatch:
    """What could not be decoded, and where."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    codec: str
    error: str
    """The decoder's exception, one line: `UnsupportedCodecError: Libraries for lz4 ...`."""
    timestamp_ms: int | None
    """The batch's record time (from its header, readable without decoding)."""

    @property
    def offsets(self) -> int:
        return self.last_offset - self.first_offset + 1

    def describe(self) -> str:
        return (
            f"undecodable record batch in {self.topic}[{self.partition}], offsets "
            f"{self.first_offset}-{self.last_offset} ({self.offsets} offsets, codec "
            f"{self.codec}): {self.error}"
        )

    def dead_letter(self, *, expected_type: str | None = None) -> DeadLetter:
        """One dead letter for the whole range, at its last offset (where the consumer's
        placeholder sits, so a restart's "already recorded" check matches it). No original
        bytes: aiokafka does not expose the batch's; the range names what to read again."""
        return DeadLetter.build(
            original=b"",
            original_key=None,
            topic=self.topic,
            partition=self.partition,
            offset=self.last_offset,
            error_kind=DeadLetterKind.UNDECODABLE,
            error=self.describe(),
            record_ts=self.timestamp_ms,
            expected_type=expected_type,
        )

    def placeholder(self) -> UndecodableRecord:
        return UndecodableRecord(
            topic=self.topic,
            partition=self.partition,
            offset=self.last_offset,
            timestamp=self.timestamp_ms if self.timestamp_ms is not None else 0,
            batch=self,
        )


@dataclass(frozen=True, slots=True)
class UndecodableRecord:
    """Stands for an undecodable batch among the records of a fetch: a `RawRecord` without
    key or value, with the fields Faust reads from an aiokafka `ConsumerRecord`."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    batch: UndecodableBatch
    timestamp_type: int = 0
    key: None = None
    value: None = None
    checksum: None = None
    serialized_key_size: int = -1
    serialized_value_size: int = -1
    headers: tuple[()] = field(default=())


def with_placeholders(
    records: Mapping[Any, Sequence[Any]] | None, placeholders: Iterable[UndecodableRecord]
) -> dict[Any, Sequence[Any]]:
    """`records` (partition -> records in offset order) with each placeholder in its
    partition at its offset. A partition new to `records` is keyed by aiokafka's
    TopicPartition like the others: Faust commits with these keys, and aiokafka refuses any
    other tuple type."""
    merged: dict[Any, Sequence[Any]] = dict(records or {})
    for placeholder in placeholders:
        tp = TopicPartition(placeholder.topic, placeholder.partition)
        partition_records = list(merged.get(tp, ()))
        bisect.insort(partition_records, placeholder, key=_offset)
        merged[tp] = partition_records
    return merged


def _offset(record: Any) -> int:
    offset: int = record.offset
    return offset


def take_all(found: collections.deque[UndecodableBatch]) -> list[UndecodableBatch]:
    """Everything reported so far (the fetcher's thread appends, the consumer takes)."""
    taken: list[UndecodableBatch] = []
    while found:
        taken.append(found.popleft())
    return taken


# --- inside aiokafka's fetcher --------------------------------------------------------------
#
# The hook is aiokafka's buffer of fetch results (`Fetcher._records`): each result is stored
# there before anything reads it, and its record iterator starts lazily, so swapping the
# result's `MemoryRecords` for a checking view changes how every batch is read and nothing
# else. Private attributes of aiokafka 0.14 (pinned <0.15); `install` fails loudly if they
# move, and tests/unit/test_undecodable_batches.py runs aiokafka's own reader through it.


def tolerate_undecodable_batches(consumer: AIOKafkaConsumer) -> collections.deque[UndecodableBatch]:
    """Make a started consumer read undecodable batches as empty; returns the queue they are
    reported to (thread-safe appends: Faust runs the consumer in a thread of its own)."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    buffered = getattr(fetcher, "_records", None)
    if not isinstance(buffered, dict):
        raise RuntimeError(
            "aiokafka's Fetcher has no _records buffer (consumer not started, or aiokafka "
            "changed): undecodable batches could not be tolerated"
        )
    found: collections.deque[UndecodableBatch] = collections.deque()
    checked = _CheckedResults(found.append)
    for tp, result in buffered.items():
        checked[tp] = result
    fetcher._records = checked
    return found


Report = Callable[[UndecodableBatch], None]


class _CheckedResults(collections.OrderedDict[Any, Any]):
    """`Fetcher._records`: a fetch result's records are read through `_CheckedRecords`."""

    def __init__(self, report: Report) -> None:
        super().__init__()
        self._report = report

    def __setitem__(self, tp: Any, result: Any) -> None:
        partition_records = getattr(result, "_partition_records", None)  # None: a FetchError
        if partition_records is not None and not isinstance(
            partition_records._records, _CheckedRecords
        ):
            partition_records._records = _CheckedRecords(tp, partition_records, self._report)
        super().__setitem__(tp, result)


class _CheckedRecords:
    """A fetch response's `MemoryRecords` whose batches decode whole or report."""

    __slots__ = ("_batches", "_partition_records", "_report", "_tp")

    def __init__(self, tp: Any, partition_records: Any, report: Report) -> None:
        self._tp = tp
        self._partition_records = partition_records
        self._batches = partition_records._records
        self._report = report

    def has_next(self) -> bool:
        more: bool = self._batches.has_next()
        return more

    def next_batch(self) -> _CheckedBatch | None:
        batch = self._batches.next_batch()
        return None if batch is None else _CheckedBatch(batch, self)

    def report(self, batch: Any, exc: Exception) -> None:
        # Where aiokafka stands in the partition: the fetch may start inside this batch.
        position: int = self._partition_records.next_fetch_offset
        first = max(getattr(batch, "base_offset", position), position)
        self._report(
            UndecodableBatch(
                topic=self._tp.topic,
                partition=self._tp.partition,
                first_offset=first,
                last_offset=max(batch.next_offset - 1, first),
                codec=codec_name(getattr(batch, "compression_type", None)),
                error=_one_line(exc),
                timestamp_ms=_batch_time(batch),
            )
        )


class _CheckedBatch:
    """One record batch, decoded whole the first time aiokafka reads a record of it.

    Header fields (offsets, producer id, control and transaction flags) come from the batch
    itself, so aiokafka still skips aborted and control batches without decoding them; only a
    batch it actually reads is decoded, and reported if that fails.
    """

    __slots__ = ("_batch", "_records", "_source")

    def __init__(self, batch: Any, source: _CheckedRecords) -> None:
        self._batch = batch
        self._source = source
        self._records: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        return True  # checked when decoded: a bad CRC is reported like any undecodable batch

    def __iter__(self) -> Iterator[Any]:
        return self._remaining()

    def __next__(self) -> Any:
        return next(self._remaining())

    def _remaining(self) -> Iterator[Any]:
        if self._records is None:
            self._records = iter(self._decoded())
        return self._records

    def _decoded(self) -> list[Any]:
        batch = self._batch
        try:
            if not batch.validate_crc():
                raise CorruptRecordException("CRC mismatch")
            return list(batch)
        # Decoders raise what they like (UnsupportedCodecError, cramjam's DecompressionError,
        # OSError/EOFError from gzip, struct/Unicode errors from garbled records): any of
        # them means the same thing here.
        except Exception as exc:
            self._source.report(batch, exc)
            return []


def _one_line(exc: Exception) -> str:
    name, text = type(exc).__name__, " ".join(str(exc).split())
    if not text.startswith(name):  # aiokafka's errors name themselves already
        text = f"{name}: {text}"
    return text[:MAX_ERROR_CHARS]


def _batch_time(batch: Any) -> int | None:
    if getattr(batch, "timestamp_type", None) == _LOG_APPEND_TIME:
        ts = getattr(batch, "max_timestamp", None)
    else:
        ts = getattr(batch, "first_timestamp", getattr(batch, "timestamp", None))
    # -1: no timestamp. A producer's CreateTime can be any int64; past year 9999 it is no time.
    return ts if type(ts) is int and 0 <= ts <= EPOCH_MS_MAX else None


__all__ = [
    "UndecodableBatch",
    "UndecodableRecord",
    "take_all",
    "tolerate_undecodable_batches",
    "with_placeholders",
]
