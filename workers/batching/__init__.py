"""Batch-shaped hand-off from Kafka to Faust agents.

Faust hands agents one message at a time: per message it creates an event, wakes a queue,
runs sensors and acks, which caps a worker at ~13-30k events/s no matter how cheap the agent is.
Agents that subscribe through a :class:`BatchTopic` instead receive one event per fetched
partition batch (a :class:`RawBatch`), acked as a unit, while every other topic (table
changelogs, Faust internals) keeps Faust's per-message path. See README "Batch hand-off".
"""

from workers.batching.app import BatchingApp
from workers.batching.records import RawBatch
from workers.batching.topic import BatchTopic

__all__ = ["BatchTopic", "BatchingApp", "RawBatch"]
