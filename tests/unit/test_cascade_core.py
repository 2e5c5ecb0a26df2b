"""The cascade as decisions (workers.cascade.core) and their re-derivation from the trail
(workers.cascade.verify)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from schemas.state import Availability, CircuitState, DependencyState
from topics.catalog import TopicCatalog
from workers.audit.recorded_input import CASCADE_CHAIN, read_trail
from workers.cascade.core import CascadeCore, CascadeDecision, breaker_subject, published_status
from workers.cascade.runner import CascadeRunner
from workers.cascade.verify import verify_cascade
from workers.kernels.dependency_cascade import NodeStatus
from workers.kernels.dependency_graph import DependencyGraph, Edge, GuardKind, Node, Subject
from workers.masking.masker import default_masker
from workers.policies.breaker_models import KeyMode
from workers.policies.policy_set import default_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.trail import verify_trail
from workers.settings import Mode

OPEN, CLOSED, HALF_OPEN = CircuitState.OPEN, CircuitState.CLOSED, CircuitState.HALF_OPEN
UNAVAILABLE, DEGRADED, AVAILABLE = (
    Availability.UNAVAILABLE,
    Availability.DEGRADED,
    Availability.AVAILABLE,
)


def node(nid: str, kind: GuardKind, name: str, *deps: str | tuple[str, bool]) -> Node:
    edges = tuple(Edge(d) if isinstance(d, str) else Edge(*d) for d in deps)
    return Node(nid, Subject(kind, name), edges, criticality="essential")


# The seed's shape: a planner module needs the search tool, which needs the openai vendor;
# the cache tool is optional for the planner.
GRAPH = DependencyGraph(
    (
        node("dep.vendor.openai", GuardKind.VENDOR, "openai"),
        node("dep.tool.search", GuardKind.TOOL, "search", "dep.vendor.openai"),
        node("dep.tool.cache", GuardKind.TOOL, "cache"),
        node(
            "dep.core.planner",
            GuardKind.MODULE,
            "planner",
            "dep.tool.search",
            ("dep.tool.cache", True),
        ),
    ),
    10,
)


def changes(decisions: Sequence[CascadeDecision]) -> list[tuple[str, str, str]]:
    return [(d.subject, d.before.availability, d.after.availability) for d in decisions]


@pytest.mark.parametrize(
    ("key", "mode", "subject"),
    [
        ("openai", KeyMode.VENDOR, "vendor:openai"),
        ("search", KeyMode.TOOL, "tool:search"),
        ("openai/search", KeyMode.VENDOR_TOOL, "tool:search"),
        ("search", KeyMode.VENDOR_TOOL, "tool:search"),  # a key without a vendor part
    ],
)
def test_a_breaker_key_names_one_subject_by_the_policys_key_mode(
    key: str, mode: KeyMode, subject: str
) -> None:
    assert str(breaker_subject(key, mode)) == subject


def test_an_open_breaker_makes_its_node_and_everything_requiring_it_unavailable() -> None:
    core = CascadeCore(GRAPH, KeyMode.VENDOR_TOOL)
    decided = core.observe("openai/search", OPEN, step="bs:0:7", at_ms=1_000)
    assert changes(decided) == [
        ("tool:search", AVAILABLE, UNAVAILABLE),
        ("module:planner", AVAILABLE, UNAVAILABLE),
    ]
    planner = decided[1]
    assert planner.after.cause == ("dep.core.planner", "dep.tool.search")
    assert planner.trigger == "tool:search down"
    assert planner.breaker_key == "openai/search"
    assert planner.open_breakers == ("openai/search",)
    recovered = core.observe("openai/search", CLOSED, step="bs:0:9", at_ms=2_000)
    assert changes(recovered) == [
        ("tool:search", UNAVAILABLE, AVAILABLE),
        ("module:planner", UNAVAILABLE, AVAILABLE),
    ]
    assert recovered[0].open_breakers == ()


def test_an_optional_dependency_down_degrades_its_dependent() -> None:
    core = CascadeCore(GRAPH, KeyMode.TOOL)
    assert changes(core.observe("cache", OPEN, step="s", at_ms=0)) == [
        ("tool:cache", AVAILABLE, UNAVAILABLE),
        ("module:planner", AVAILABLE, DEGRADED),
    ]


def test_a_subject_stays_down_while_any_of_its_breakers_is_open() -> None:
    core = CascadeCore(GRAPH, KeyMode.VENDOR_TOOL)
    assert core.observe("openai/search", OPEN, step="a", at_ms=0)
    assert core.observe("bing/search", OPEN, step="b", at_ms=0) == []  # already down
    assert core.observe("openai/search", HALF_OPEN, step="c", at_ms=0) == []  # bing still open
    assert core.open_breakers == ("bing/search",)
    assert changes(core.observe("bing/search", CLOSED, step="d", at_ms=0))[0] == (
        "tool:search",
        UNAVAILABLE,
        AVAILABLE,
    )


def test_half_open_is_up_and_breakers_outside_the_graph_are_not_kept() -> None:
    core = CascadeCore(GRAPH, KeyMode.VENDOR_TOOL)
    core.observe("openai/search", OPEN, step="a", at_ms=0)
    assert changes(core.observe("openai/search", HALF_OPEN, step="b", at_ms=0))[0][2] == AVAILABLE
    assert core.observe("openai/chat", OPEN, step="c", at_ms=0) == []
    assert core.open_breakers == ()


def test_a_decision_is_a_valid_state_record_and_audit_payload() -> None:
    core = CascadeCore(GRAPH, KeyMode.VENDOR)
    decided = core.observe(
        "openai", CircuitState.FORCED_OPEN, step="bs:1:3", at_ms=1_700_000_000_000
    )
    record = decided[-1].state_record("a" * 64)
    assert isinstance(record, DependencyState)
    assert DependencyState.model_validate_json(record.model_dump_json()) == record
    assert (record.node, record.subject, record.previous, record.availability) == (
        "dep.core.planner",
        "module:planner",
        AVAILABLE,
        UNAVAILABLE,
    )
    assert record.reason.startswith("dep.vendor.openai is down")
    assert published_status(record) == decided[-1].after
    payload = decided[-1].audit_payload()
    assert payload["step"] == "bs:1:3"
    assert payload["breaker_state"] == "forced_open"
    assert payload["open_breakers"] == ["openai"]


def test_resync_publishes_only_the_differences_and_removes_subjects_left_the_graph() -> None:
    core = CascadeCore(GRAPH, KeyMode.VENDOR_TOOL, ["openai/search", "openai/chat"])
    assert core.open_breakers == ("openai/search",)
    published = {
        "tool:search": NodeStatus(UNAVAILABLE, ("dep.tool.search",)),  # as it is: no decision
        "tool:cache": NodeStatus(UNAVAILABLE, ("dep.tool.cache",)),  # recovered meanwhile
        "tool:retired": NodeStatus(UNAVAILABLE, ("dep.tool.retired",)),
    }
    decided = core.resync(published, at_ms=5)
    assert changes(decided) == [
        ("tool:cache", UNAVAILABLE, AVAILABLE),
        ("module:planner", AVAILABLE, UNAVAILABLE),
        ("tool:retired", UNAVAILABLE, AVAILABLE),
    ]
    assert {d.trigger for d in decided} == {"resync"}
    assert decided[-1].state_record("a" * 64) is None  # a tombstone
    assert core.resync({}, at_ms=5)[0].subject == "tool:search"


# --- verification from the trail ----------------------------------------------------------

KEYS = ["openai", "openai/search", "bing/search", "x/cache", "x/other"]
STATES = [OPEN, CLOSED, HALF_OPEN, CircuitState.FORCED_OPEN]


def _payloads_of(operations: Sequence[tuple[str, CircuitState] | None]) -> list[dict[str, Any]]:
    """Run a live cascade over breaker changes; None is a restart (a new core, resynced
    against what was published). The audit payloads it would have written, in order."""
    mode = KeyMode.VENDOR_TOOL
    core = CascadeCore(GRAPH, mode)
    published: dict[str, NodeStatus] = {}
    open_now: set[str] = set()
    payloads: list[dict[str, Any]] = []
    for n, operation in enumerate(operations):
        if operation is None:
            core = CascadeCore(GRAPH, mode, open_now)
            decided = core.resync(published, at_ms=n)
        else:
            key, state = operation
            (open_now.add if state in (OPEN, CircuitState.FORCED_OPEN) else open_now.discard)(key)
            decided = core.observe(key, state, step=f"bs:0:{n}", at_ms=n)
        for decision in decided:
            published[decision.subject] = decision.after
            payloads.append(decision.audit_payload())
    return payloads


operations = st.lists(
    st.one_of(st.none(), st.tuples(st.sampled_from(KEYS), st.sampled_from(STATES))),
    max_size=40,
)


@given(operations)
def test_every_recorded_step_is_derived_again_from_the_trail(
    ops: list[tuple[str, CircuitState] | None],
) -> None:
    payloads = _payloads_of(ops)
    result = verify_cascade(payloads, GRAPH, KeyMode.VENDOR_TOOL)
    assert result.mismatches == 0
    assert result.recorded == len(payloads)


def test_an_edited_decision_is_a_mismatch() -> None:
    payloads = _payloads_of([("openai/search", OPEN), ("openai/search", CLOSED)])
    assert verify_cascade(payloads, GRAPH, KeyMode.VENDOR_TOOL).mismatches == 0
    payloads[1]["to"] = "degraded"
    result = verify_cascade(payloads, GRAPH, KeyMode.VENDOR_TOOL)
    assert result.mismatches == 2
    cause = tuple(payloads[1]["cause"])
    assert result.missing == (("module:planner", "available", "degraded", cause),)
    assert result.extra == (("module:planner", "available", "unavailable", cause),)


def test_a_dropped_decision_is_a_mismatch() -> None:
    payloads = _payloads_of([("openai/search", OPEN)])
    assert len(payloads) == 2  # search, planner
    del payloads[0]
    assert verify_cascade(payloads, GRAPH, KeyMode.VENDOR_TOOL).extra[0][0] == "tool:search"


def test_replay_from_the_trail_verifies_the_dependencies_chain() -> None:
    defaults = default_policies(Mode.DEVELOPMENT)
    policies = replace(
        defaults, dependencies=replace(defaults.dependencies, graph=GRAPH)
    )  # the default breaker key mode: vendor/tool
    payloads = _payloads_of([("openai/search", OPEN), None, ("openai/search", CLOSED)])
    records = [
        {"chain": CASCADE_CHAIN, "seq": n, "event_type": "aud.dependency.changed", "payload": p}
        for n, p in enumerate(payloads)
    ]
    pipeline = PipelineReplay(policies, TopicCatalog())
    clean = verify_trail(read_trail(records), pipeline)
    assert (clean.recorded, clean.mismatches) == (len(payloads), 0)
    records[0]["payload"] = {**payloads[0], "to": "degraded"}
    edited = verify_trail(read_trail(records), pipeline)
    assert edited.mismatches == 2
    assert edited.missing[0][:6] == (
        "dependency",
        "change",
        "tool:search",
        "",
        "available",
        "degraded",
    )


def test_a_breaker_tombstone_is_the_key_no_longer_refusing_calls() -> None:
    runner = CascadeRunner(
        {},
        "unused:9092",
        app_id="test",
        catalog=TopicCatalog(),
        policies=default_policies(Mode.DEVELOPMENT),
        masker=default_masker(),
    )
    core = CascadeCore(GRAPH, KeyMode.VENDOR_TOOL, ["openai/search"])
    tp = TopicPartition("guardstream.breaker-state", 1)
    tombstone = ConsumerRecord(tp.topic, 1, 42, 7_000, 0, b"openai/search", None, None, 13, -1, [])
    decided = runner._observe(core, tp, tombstone)
    assert changes(decided)[0] == ("tool:search", UNAVAILABLE, AVAILABLE)
    assert (decided[0].step, decided[0].at_ms) == ("guardstream.breaker-state:1:42", 7_000)
    assert core.open_breakers == ()
