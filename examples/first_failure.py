"""A toy decision kernel: each vendor's first failed call of a UTC day, recorded.

It is the README's "How to add a kernel" example, and `tests/unit/test_example_kernel.py`
replays traffic through it next to the built-in kernels. Three parts, as for any kernel:

1. the pure core: state in, decisions out, no I/O and no clock (time is the event's);
2. the spec: inputs, shape (direct: decided where the events are), audit, cap;
3. the list of kernels it joins (`workers.kernel_set.KERNELS` for the worker and replay).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.events import InvocationStatus, ToolInvocation
from schemas.stream import StreamEvent
from schemas.types import epoch_ms
from topics.catalog import TopicCatalog, TopicName
from workers.decisions import Decision, RecordDecision
from workers.kernels.key_cap import CappedMap, KeyLimit, StateKind
from workers.policies.policy_set import PolicySet
from workers.shell.spec import Decide, KernelSpec, StateRecord

DAY_MS = 86_400_000
KERNEL = "first_failure"


@dataclass(slots=True)
class LastFailure:
    day: int
    """Days since the epoch (UTC) of the vendor's latest recorded failure."""


class FirstFailureState(BaseModel):
    vendor: str
    day: int


class FirstFailureCore:
    """The vendors of one tool-invocations partition. A toy's simplification: events are
    keyed by vendor and tool, so one vendor's calls can land in several partitions and each
    records its own first failure; a real per-vendor kernel would be routed by vendor."""

    def __init__(self, tool_topic: str, limit: KeyLimit) -> None:
        self.keys: CappedMap[LastFailure] = CappedMap(limit)
        self._tool_topic = tool_topic

    def decider(self, topic: str) -> Decide | None:
        return self._call if topic == self._tool_topic else None

    def _call(self, event: StreamEvent) -> list[Decision]:
        if type(event) is not ToolInvocation or event.status is InvocationStatus.SUCCESS:
            return []
        at_ms = epoch_ms(event.ts)
        day = at_ms // DAY_MS
        last = self.keys.get(event.vendor)
        if last is None:
            last = self.keys.admit(event.vendor, lambda: LastFailure(day - 1), at_ms)
            if last is None:
                return []  # at the cap: a toy just stops recording new vendors
        if last.day >= day:
            return []
        last.day = day
        facts = {"vendor": event.vendor, "status": str(event.status)}
        return [RecordDecision(KERNEL, event.vendor, at_ms, event.event_id, "0", KERNEL, facts)]

    def states(self) -> Iterator[FirstFailureState]:
        for vendor, last in sorted(self.keys.items()):
            yield FirstFailureState(vendor=vendor, day=last.day)

    def take_state_records(self) -> list[StateRecord]:
        return []

    @property
    def extra_held(self) -> int:
        return 0


def _core(policies: PolicySet, catalog: TopicCatalog, limit: KeyLimit) -> FirstFailureCore:
    return FirstFailureCore(catalog.name(TopicName.TOOL_INVOCATIONS), limit)


FIRST_FAILURE: KernelSpec[Any] = KernelSpec(
    kernel=KERNEL,
    state_kind=StateKind.BREAKERS,  # its keys count against the breaker cap
    inputs=(TopicName.TOOL_INVOCATIONS,),
    enabled=lambda policies: True,
    audit=lambda core, decision: None,  # a toy: recorded in replay output, not audited
    direct=_core,
)
