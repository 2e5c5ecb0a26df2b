"""The simulator as a fleet behind a gateway (`guardstream simulate --gateway`): each simulated
tool call asks `check()` first, and a call that is not allowed is not made, so nothing of it
is published. What the gateway said is counted per decision and reason, and served on
/metrics, which `make demo` shows next to the states."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import orjson
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from topics.catalog import TopicName
from workers.gateway import AsyncGatewayClient, Decision
from workers.simulate.traffic import SimRecord

GATEWAY_CHECKS = "guardstream_gateway_checks"


class GatewayCounts(Collector):
    """(decision, reason) -> checks; `reason` is the first reason's kind, or "none"."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            GATEWAY_CHECKS, "The simulated gateway's check() answers", labels=["decision", "reason"]
        )
        for (decision, reason), count in sorted(self.counts.items()):
            family.add_metric([decision, reason], count)
        yield family


async def admitted(gateway: AsyncGatewayClient, record: SimRecord, counts: GatewayCounts) -> str:
    """ "allow" if `record` may be published: not a tool call (cost, latency and corrupt
    records are not calls), or a call the gateway allows; else "<decision>:<reason>"."""
    if record.topic is not TopicName.TOOL_INVOCATIONS or not record.valid:
        return "allow"
    call = orjson.loads(record.value)
    verdict = await gateway.check(
        call["vendor"], call["tool"], team=call.get("team"), user=call.get("user")
    )
    reason = verdict.reasons[0].kind.value if verdict.reasons else "none"
    counts.counts[(verdict.decision.value, reason)] += 1
    if verdict.decision is Decision.ALLOW:
        return "allow"
    return f"{verdict.decision.value}:{reason}"
