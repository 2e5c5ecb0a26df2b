"""Transactional ids (workers.batching.transactions): one per agent subscription and
partition, so two workers never share one."""

from __future__ import annotations

from workers.batching import BatchingApp, BatchTopic
from workers.batching.transactions import transactional_id

INPUTS = ["p.tool-invocations", "p.cost-events", "p.latency-events"]


def test_an_agents_topics_share_a_transaction_per_partition_and_agents_never_do() -> None:
    app = BatchingApp("guardstream-test")
    BatchTopic(app, topics=INPUTS)
    BatchTopic(app, topics=["p.budget-spend"])
    BatchTopic(app, topics=["p.slo-counts"])
    ingest = {transactional_id(app, topic, 1) for topic in INPUTS}
    assert ingest == {"guardstream-test-p.cost-events-1"}  # one chain input-p1, one writer
    ids = {
        transactional_id(app, topic, partition)
        for topic in [*INPUTS, "p.budget-spend", "p.slo-counts"]
        for partition in range(4)
    }
    assert len(ids) == 3 * 4  # Faust's own naming gives 4: every topic here has 4 partitions
    assert transactional_id(app, "p.unsubscribed", 2) == "guardstream-test-p.unsubscribed-2"
