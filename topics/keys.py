"""Record keys for the input topics: the key decides the partition, so it decides ordering.

An event and its retries share a key (and so a partition), which is what lets per-partition
de-duplication catch duplicates.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from schemas.events import CostEvent, InputEvent, LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride


def input_key(event: InputEvent | BreakerOverride) -> bytes:
    """An override is keyed like the calls of its breaker, so it lands in their partition."""
    if isinstance(event, ToolInvocation | LatencyEvent | BreakerOverride):
        return f"{event.vendor}/{event.tool}".encode()
    if isinstance(event, CostEvent):
        scope = event.team or event.project or event.user or event.org or "global"
        return scope.encode()
    raise TypeError(f"not an input event: {type(event).__name__}")


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of `partitions` a record keyed `key` goes to, as Kafka's default
    partitioner (murmur2, aiokafka's and the Java client's) sends it."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))
