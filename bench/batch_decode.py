"""What reading fetched batches through the undecodable-batch check costs (`batching.undecodable`).

aiokafka's own reader (`PartitionRecords`, what a consumer drains) over the same fetch
response, plain and through the checking buffer, per codec; no broker, so the figure is the
decode path alone. Prints ns per record for both and their ratio (run them in one process:
ratios, not absolute times, compare across machines).

    python -m bench.batch_decode                      # 200 batches x 100 records per codec
    python -m bench.batch_decode --batches 50 --records 500 --rounds 5
"""

from __future__ import annotations

import argparse
import collections
import struct
import time
from collections.abc import Callable
from typing import Any

from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from workers.batching.undecodable import CODEC_NAMES, UndecodableBatch, _CheckedResults

TP = TopicPartition("bench.tool-invocations", 0)


def fetch_response(codec: int, batches: int, records: int) -> bytes:
    """`batches` record batches of `records` invocation-sized JSON values each."""
    chunks = []
    for number in range(batches):
        builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 1 << 24)
        for delta in range(records):
            value = (
                b'{"event_id":"e-%d-%d","ts":"2026-11-18T00:00:00.000Z","vendor":"openai",'
                b'"tool":"chat","status":"success","duration_ms":%d}' % (number, delta, delta)
            )
            builder.append(delta, timestamp=1_795_000_000_000, key=None, value=value, headers=[])
        raw = bytearray(builder.build())
        struct.pack_into(">q", raw, 0, number * records)  # the broker's base offset
        chunks.append(bytes(raw))
    return b"".join(chunks)


class _Result:
    def __init__(self, records: Any) -> None:
        self._partition_records = records


def plain(payload: bytes) -> int:
    return sum(1 for _ in _reader(payload))


def checked(payload: bytes) -> int:
    found: collections.deque[UndecodableBatch] = collections.deque()
    reader = _reader(payload)
    _CheckedResults(found.append)[TP] = _Result(reader)
    count = sum(1 for _ in reader)
    assert not found
    return count


def _reader(payload: bytes) -> Any:
    return PartitionRecords(TP, MemoryRecords(payload), None, 0, None, None, True, READ_UNCOMMITTED)


def best_ns_per_record(
    readers: list[Callable[[bytes], int]], payload: bytes, rounds: int
) -> list[float]:
    """Best ns per record of each reader, the readers taking turns in every round (a busy
    machine then slows them alike)."""
    best = [float("inf")] * len(readers)
    for _ in range(rounds):
        for index, read in enumerate(readers):
            started = time.perf_counter_ns()
            count = read(payload)
            best[index] = min(best[index], (time.perf_counter_ns() - started) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.batches} batches x {args.records} records, best of {args.rounds} rounds")
    print(f"{'codec':<7} {'plain ns/rec':>13} {'checked ns/rec':>15} {'ratio':>6}")
    for codec, name in CODEC_NAMES.items():
        payload = fetch_response(codec, args.batches, args.records)
        base, guarded = best_ns_per_record([plain, checked], payload, args.rounds)
        print(f"{name:<7} {base:>13.0f} {guarded:>15.0f} {guarded / base:>6.2f}")


if __name__ == "__main__":
    main()
