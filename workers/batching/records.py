"""The value a batch agent receives: the raw records of one fetch for one partition."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class RawRecord(Protocol):
    """The fields guardstream reads from an aiokafka ``ConsumerRecord``."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A `RawRecord` held in memory: read back from a topic (replay), or made up by tests
    and benchmarks."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Records of one topic-partition, in offset order, acknowledged together."""

    topic: str
    partition: int
    records: Sequence[RawRecord]
    generation: int | None = None
    """The consumer's rebalance count when it was delivered (`batching.generation`); None
    for batches that did not come from the consumer (replay, tests)."""

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[RawRecord]:
        return iter(self.records)

    @property
    def first_offset(self) -> int:
        return self.records[0].offset

    @property
    def last_offset(self) -> int:
        return self.records[-1].offset
