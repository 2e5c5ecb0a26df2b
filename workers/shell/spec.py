"""What the shell needs to know about a decision kernel, written once per kernel (issue 12).

A `KernelSpec` names a kernel's inputs, where its state lives, how one partition's pure core
is built, which decisions the audit trail records and how its metrics read. The Faust shell
(`workers.shell.stages`, composed in `workers.app`) and the replay driver
(`workers.replay.pipeline`) run any list of specs; neither knows a kernel by name.

Two shapes of kernel:

- **direct**: decided where the events are. One core per partition of `state_topic_source`
  (an input topic); its events, and those of the other input topics with the same partition
  number, go to that core in partition order (breakers).
- **routed**: counted where the state is. A `Router` turns each input batch into keyed records
  on `routed_topic` (plus the input partition's watermark); one core per `routed_topic`
  partition counts them in event-time order (`routed.counting.RoutedCounting`: budgets, SLOs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client.registry import Collector
from pydantic import BaseModel

from schemas.stream import StreamEvent
from schemas.types import Severity
from schemas.watermark import SourceWatermark
from topics.catalog import TopicCatalog, TopicName
from workers.decisions import Decision
from workers.kernels.key_cap import CappedMap, KeyCaps, KeyCounts, KeyLimit, StateKind
from workers.policies.policy_set import PolicySet
from workers.routed.counting import RoutedBatch

Decide = Callable[[StreamEvent], list[Decision]]
"""One event of one input topic -> the decisions it leads to."""

StateRecord = tuple[bytes, BaseModel]
"""A state-topic record: its key and its value."""


class Core(Protocol):
    """One partition's decision state (pure): an engine, or a routed counting over one."""

    @property
    def keys(self) -> CappedMap[Any]:
        """Its producer-keyed states, under the worker's cap (`kernels.key_cap`)."""
        ...

    @property
    def extra_held(self) -> int:
        """States held beside `keys` (e.g. overflow breakers), for the key metrics."""
        ...

    def states(self) -> Iterable[BaseModel]:
        """Every state it holds (a worker's web page, the replay summary)."""
        ...

    def take_state_records(self) -> list[StateRecord]:
        """The state records of what changed since the last call (published per batch)."""
        ...


class DirectCore(Core, Protocol):
    def decider(self, topic: str) -> Decide | None:
        """How an event of input `topic` is decided (None: the kernel ignores the topic)."""
        ...


class RoutedCore(Core, Protocol):
    unreadable: int

    def apply(self, raw: bytes) -> list[Decision]:
        """One record of the routed partition (routed items or a watermark)."""
        ...

    def add(self, record: Any) -> None:
        """A routed record, decoded (replay hands records over without the wire)."""
        ...

    def watermark(self, mark: SourceWatermark) -> list[Decision]:
        """A source's watermark, decoded."""
        ...


class Router(Protocol):
    """A routed kernel's input batch -> its routed records and the batch's watermark."""

    def __call__(
        self, events: Sequence[StreamEvent], *, source_topic: str, source_partition: int
    ) -> RoutedBatch: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """How a decision is sealed into the kernel's audit chain."""

    event_type: str
    severity: Severity
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class KernelStats:
    """What the shell counted for one kernel (its metrics collector reads these)."""

    cores: Callable[[], Iterable[Core]]
    routed: Callable[[], int]
    decisions: Callable[[], int]
    transitions: Callable[[], int]
    alerts: Callable[[], int]


C = TypeVar("C", bound=Core)


@dataclass(frozen=True, slots=True)
class KernelSpec(Generic[C]):
    kernel: str
    """Its name: in each decision (`Decision.kernel`) and its audit chains (`<name>s-p<N>`)."""
    state_kind: StateKind
    """Which of the worker's key caps its cores share (`Settings.key_caps`)."""
    inputs: tuple[TopicName, ...]
    """The input topics whose accepted events it decides on."""
    enabled: Callable[[PolicySet], bool]
    """Whether the policies give it anything to decide (else it is not wired at all)."""
    audit: Callable[[C, Decision], AuditEntry | None]
    """A decision's audit record (None: not audited, e.g. a breaker alert, whose opening
    transition is)."""
    direct: Callable[[PolicySet, TopicCatalog, KeyLimit], C] | None = None
    """A direct kernel's core for one partition of `inputs[0]`."""
    routed_topic: TopicName | None = None
    router: Callable[[PolicySet], Router] | None = None
    routed: Callable[[PolicySet, Sequence[tuple[str, int]], KeyLimit], C] | None = None
    """A routed kernel's core for one partition of `routed_topic`, waiting for the given
    input partitions' watermarks."""
    state_topic: TopicName | None = None
    """The compacted topic of its current state per key (None: it keeps none)."""
    page: str | None = None
    """The worker's web page listing the states it holds (e.g. `/breakers`)."""
    state_order: Callable[[BaseModel], Any] = repr
    """The sort key of its states on the web page."""
    collector: Callable[[KernelStats], Collector] | None = None
    """Its Prometheus metrics (None: the shell's key metrics only)."""

    def __post_init__(self) -> None:
        routed = (self.routed_topic, self.router, self.routed)
        if self.direct is None and None in routed:
            raise ValueError(f"{self.kernel}: a routed kernel needs routed_topic, router, routed")
        if self.direct is not None and any(part is not None for part in routed):
            raise ValueError(f"{self.kernel}: a kernel is direct or routed, not both")

    @property
    def chain_prefix(self) -> str:
        """Its audit chains are `<prefix>-p<partition>` (e.g. `breakers-p3`)."""
        return f"{self.kernel}s"

    def state_partitions_topic(self) -> TopicName:
        """The topic whose partitions hold its state: one core per partition."""
        return self.routed_topic if self.routed_topic is not None else self.inputs[0]


FILE_SOURCE = ("file", 0)
"""A file's one source of routed records and watermarks: its events, whatever their topic."""


def sources(catalog: TopicCatalog, topics: Iterable[TopicName]) -> list[tuple[str, int]]:
    """Every partition of `topics` (the input partitions a routed core waits for)."""
    return [
        (catalog.name(topic), partition)
        for topic in topics
        for partition in range(catalog.spec(topic).partitions)
    ]


class KernelCores(Generic[C]):
    """One kernel's cores, one per partition of its state topic, each holding that
    partition's share of the worker's key cap: the shell's stages and replay hold their cores
    this way, and build them only here."""

    def __init__(
        self,
        spec: KernelSpec[C],
        policies: PolicySet,
        catalog: TopicCatalog,
        caps: KeyCaps,
        *,
        one_stream: bool = False,
    ) -> None:
        """`one_stream`: a file (`replay --input`): each core holds the whole cap, and a
        routed core waits for one source, `FILE_SOURCE`."""
        self.spec = spec
        self.cores: dict[int, C] = {}
        self.inputs = {catalog.name(topic) for topic in spec.inputs}
        self.partitions_topic = catalog.name(spec.state_partitions_topic())
        """The topic whose partitions its cores are (an input or the routed topic)."""
        self.partitions = catalog.spec(spec.state_partitions_topic()).partitions
        self.sources = [FILE_SOURCE] if one_stream else sources(catalog, spec.inputs)
        self._policies = policies
        self._catalog = catalog
        self._caps = caps
        self._one_stream = one_stream

    def build(self, partition: int) -> C:
        """A new core for `partition`, held from now on."""
        kind, caps = self.spec.state_kind, self._caps
        limit = (
            caps.whole(kind) if self._one_stream else caps.share(kind, self.partitions, partition)
        )
        if self.spec.direct is not None:
            core = self.spec.direct(self._policies, self._catalog, limit)
        else:
            assert self.spec.routed is not None
            core = self.spec.routed(self._policies, self.sources, limit)
        self.cores[partition] = core
        return core

    def states(self) -> list[BaseModel]:
        """Every state the held cores hold, in the spec's order."""
        every = [state for core in self.cores.values() for state in core.states()]
        return sorted(every, key=self.spec.state_order)

    def key_counts(self) -> KeyCounts:
        cores = list(self.cores.values())
        return KeyCounts.of(
            (core.keys for core in cores), extra_held=sum(core.extra_held for core in cores)
        )
