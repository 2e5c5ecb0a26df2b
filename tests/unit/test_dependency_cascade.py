"""The dependency graph and cascade kernels (workers/kernels/dependency_graph.py,
dependency_cascade.py): cycles and depth refused by name, availability per node with its cause,
the incremental kernel against a recount, and the three properties issue 13 asks for."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.state import CircuitState
from workers.errors import ConfigError
from workers.kernels.dependency_cascade import (
    AVAILABLE,
    Availability,
    DependencyCascade,
    FactChange,
    Health,
    NodeStatus,
    cascade,
    circuit_health,
)
from workers.kernels.dependency_graph import (
    DependencyGraph,
    Edge,
    GraphError,
    GuardKind,
    Node,
    Subject,
    strongly_connected,
)
from workers.kernels.policy_limits import MAX_DEPENDENCY_DEPTH

DOWN, UP = Health.DOWN, Health.UP
UNAVAILABLE, DEGRADED = Availability.UNAVAILABLE, Availability.DEGRADED


def tool(name: str, *deps: str | tuple[str, bool]) -> Node:
    """A node guarding tool `name`, id `name`; a dependency is an id or (id, optional)."""
    edges = tuple(Edge(d) if isinstance(d, str) else Edge(*d) for d in deps)
    return Node(name, Subject(GuardKind.TOOL, name), edges)


def subject(name: str) -> Subject:
    return Subject(GuardKind.TOOL, name)


def graph(*nodes: Node, max_depth: int = 10) -> DependencyGraph:
    return DependencyGraph(nodes, max_depth)


def statuses_of(g: DependencyGraph, *down: str) -> dict[str, NodeStatus]:
    return cascade(g, {subject(name): DOWN for name in down})


# --- the graph -------------------------------------------------------------------------------


def test_order_puts_dependencies_first_and_is_deterministic() -> None:
    nodes = [tool("app", "db", "cache"), tool("db", "disk"), tool("cache"), tool("disk")]
    first = graph(*nodes).order
    assert first == graph(*reversed(nodes)).order
    assert first.index("disk") < first.index("db") < first.index("app")
    assert first.index("cache") < first.index("app")


def test_a_cycle_is_refused_and_named_at_its_first_node() -> None:
    with pytest.raises(GraphError) as info:
        graph(tool("b", "c"), tool("c", "a"), tool("a", "b"), tool("d", "a"))
    assert info.value.problems == (("a", "cycle: a -> b -> c -> a"),)


def test_every_cycle_is_named_each_once_self_loops_too() -> None:
    with pytest.raises(GraphError) as info:
        graph(tool("x", "x"), tool("p", "q"), tool("q", "p", "x"), tool("ok"))
    assert info.value.problems == (("p", "cycle: p -> q -> p"), ("x", "cycle: x -> x"))


def test_the_shortest_cycle_through_the_first_node_is_named() -> None:
    with pytest.raises(GraphError) as info:
        graph(tool("a", "b", "e"), tool("b", "c"), tool("c", "d"), tool("d", "a"), tool("e", "a"))
    assert info.value.problems == (("a", "cycle: a -> e -> a"),)


def test_tarjan_is_iterative_a_cycle_of_ten_thousand_nodes_costs_no_stack() -> None:
    n = 10_000
    nodes = [tool(f"n{i:05}", f"n{(i + 1) % n:05}") for i in range(n)]
    with pytest.raises(GraphError) as info:
        graph(*nodes)
    ((where, text),) = info.value.problems
    assert where == "n00000"
    assert text.startswith("cycle: n00000 -> n00001 -> ")
    assert text.endswith("n09999 -> n00000")


def test_strongly_connected_components_in_completion_order() -> None:
    successors = {"a": ["b"], "b": ["c", "a"], "c": ["d"], "d": ["c"], "e": []}
    assert strongly_connected(successors) == [("c", "d"), ("a", "b"), ("e",)]


@pytest.mark.parametrize(("links", "refused"), [(10, False), (11, True)])
def test_a_chain_longer_than_max_depth_is_refused_and_named(links: int, refused: bool) -> None:
    nodes = [tool(f"n{i:02}", f"n{i + 1:02}") for i in range(links)] + [tool(f"n{links:02}")]
    if not refused:
        assert len(graph(*nodes)) == links + 1
        return
    with pytest.raises(GraphError) as info:
        graph(*nodes)
    chain = " -> ".join(f"n{i:02}" for i in range(links + 1))
    assert info.value.problems == (
        ("n00", f"a chain of 11 links is deeper than max_depth 10: {chain}"),
    )


def test_depth_counts_the_longest_chain_not_the_first() -> None:
    nodes = [
        tool("top", "short", "long1"),
        tool("short"),
        tool("long1", "long2"),
        tool("long2", "long3"),
        tool("long3"),
    ]
    assert len(graph(*nodes, max_depth=3)) == 5
    with pytest.raises(GraphError, match=r"3 links .*: top -> long1 -> long2 -> long3$"):
        graph(*nodes, max_depth=2)


@pytest.mark.parametrize("max_depth", [0, MAX_DEPENDENCY_DEPTH + 1])
def test_max_depth_is_capped(max_depth: int) -> None:
    with pytest.raises(ConfigError, match=rf"max_depth must be in \[1, {MAX_DEPENDENCY_DEPTH}\]"):
        graph(tool("a"), max_depth=max_depth)


def test_structural_problems_are_all_named() -> None:
    twin = Node("twin", subject("a"))
    with pytest.raises(GraphError) as info:
        graph(tool("a", "ghost"), tool("a"), twin)
    assert info.value.problems == (
        ("a", "declared twice"),
        ("twin", "tool a is guarded by a already"),
        ("a", "depends on ghost, which is not a node of the graph"),
    )


def test_node_for_finds_the_node_guarding_a_subject() -> None:
    g = graph(tool("a"), Node("v", Subject(GuardKind.VENDOR, "openai")))
    assert g.node_for(Subject(GuardKind.VENDOR, "openai")) == g.nodes["v"]
    assert g.node_for(Subject(GuardKind.TOOL, "openai")) is None


# --- the cascade -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "health"),
    [
        (CircuitState.CLOSED, UP),
        (CircuitState.HALF_OPEN, UP),
        (CircuitState.METRICS_ONLY, UP),
        (CircuitState.DISABLED, UP),
        (CircuitState.OPEN, DOWN),
        (CircuitState.FORCED_OPEN, DOWN),
    ],
)
def test_circuit_health(state: CircuitState, health: Health) -> None:
    assert circuit_health(state) is health


def test_a_required_dependency_down_makes_the_chain_unavailable_with_its_cause() -> None:
    g = graph(
        tool("t001", "openai", "secret"), tool("openai", "egress"), tool("egress"), tool("secret")
    )
    result = statuses_of(g, "egress")
    assert result["egress"] == NodeStatus(UNAVAILABLE, ("egress",))
    assert result["openai"] == NodeStatus(UNAVAILABLE, ("openai", "egress"))
    assert result["t001"] == NodeStatus(UNAVAILABLE, ("t001", "openai", "egress"))
    assert result["secret"] == AVAILABLE
    assert result["t001"].reason == "egress is down: t001 -> openai -> egress"
    assert result["egress"].reason == "egress is down"
    assert AVAILABLE.reason == "available"


def test_an_optional_dependency_down_degrades_and_degradation_propagates() -> None:
    g = graph(tool("app", "svc"), tool("svc", ("cache", True)), tool("cache"))
    result = statuses_of(g, "cache")
    assert result["svc"] == NodeStatus(DEGRADED, ("svc", "cache"))
    assert result["app"] == NodeStatus(DEGRADED, ("app", "svc", "cache"))
    assert result["app"].reason == "cache is down, on an optional path: app -> svc -> cache"


def test_unavailable_wins_over_degraded_and_the_first_declared_cause_is_named() -> None:
    g = graph(tool("app", ("opt", True), "req1", "req2"), tool("opt"), tool("req1"), tool("req2"))
    assert statuses_of(g, "opt", "req2")["app"] == NodeStatus(UNAVAILABLE, ("app", "req2"))
    assert statuses_of(g, "opt", "req1", "req2")["app"] == NodeStatus(UNAVAILABLE, ("app", "req1"))
    assert statuses_of(g, "opt")["app"] == NodeStatus(DEGRADED, ("app", "opt"))


def test_a_nodes_own_subject_down_names_the_node_itself() -> None:
    g = graph(tool("app", "dep"), tool("dep"))
    assert statuses_of(g, "app", "dep")["app"] == NodeStatus(UNAVAILABLE, ("app",))


def test_the_kernel_outputs_changes_in_evaluation_order_and_nothing_for_no_change() -> None:
    g = graph(tool("t", "v"), tool("v", "egress"), tool("egress"), tool("other"))
    kernel = DependencyCascade(g)
    down = FactChange(subject("egress"), DOWN)
    changes = kernel.apply(down)
    assert [(c.node, c.before, c.after.availability, c.fact) for c in changes] == [
        ("egress", AVAILABLE, UNAVAILABLE, down),
        ("v", AVAILABLE, UNAVAILABLE, down),
        ("t", AVAILABLE, UNAVAILABLE, down),
    ]
    assert kernel.apply(down) == []  # the same fact again
    assert kernel.apply(FactChange(subject("nobody"), DOWN)) == []  # no node guards it
    assert kernel.health == {subject("egress"): DOWN}
    up = kernel.apply(FactChange(subject("egress"), UP))
    assert [(c.node, c.after) for c in up] == [
        ("egress", AVAILABLE),
        ("v", AVAILABLE),
        ("t", AVAILABLE),
    ]
    assert kernel.health == {}


def test_a_change_of_cause_is_a_change_too() -> None:
    g = graph(tool("app", "a", "b"), tool("a"), tool("b"))
    kernel = DependencyCascade(g, {subject("b"): DOWN})
    changes = kernel.apply(FactChange(subject("a"), DOWN))
    assert [(c.node, c.before.cause, c.after.cause) for c in changes] == [
        ("a", (), ("a",)),
        ("app", ("app", "b"), ("app", "a")),
    ]


def test_propagation_stops_where_a_status_does_not_change() -> None:
    g = graph(tool("app", "mid"), tool("mid", "a", "b"), tool("a"), tool("b"))
    kernel = DependencyCascade(g, {subject("a"): DOWN})
    # mid stays unavailable because of a (declared first): app is not touched.
    assert [c.node for c in kernel.apply(FactChange(subject("b"), DOWN))] == ["b"]


def test_initial_facts_about_unknown_subjects_are_not_kept() -> None:
    kernel = DependencyCascade(graph(tool("a")), {subject("zzz"): DOWN, subject("a"): UP})
    assert kernel.health == {}
    assert kernel.status("a") == AVAILABLE


# --- properties ------------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> DependencyGraph:
    """Acyclic by construction: a node depends only on nodes with a lower number."""
    count = draw(st.integers(1, 9))
    nodes = []
    for i in range(count):
        targets = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        edges = [(f"n{t}", draw(st.booleans())) for t in targets]
        nodes.append(tool(f"n{i}", *edges))
    return DependencyGraph(nodes, max_depth=MAX_DEPENDENCY_DEPTH)


def down_subjects(g: DependencyGraph) -> st.SearchStrategy[frozenset[Subject]]:
    return st.frozensets(st.sampled_from([node.subject for node in g.nodes.values()]))


def reaches_down(
    g: DependencyGraph, start: str, down: Iterable[Subject], *, required: bool
) -> bool:
    """Whether a path from `start` (of required edges only, if `required`) reaches a node whose
    subject is down: the definition, by a plain search."""
    down_set, seen, todo = set(down), {start}, [start]
    while todo:
        node = g.nodes[todo.pop()]
        if node.subject in down_set:
            return True
        for edge in node.depends_on:
            if not (required and edge.optional) and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return False


def assert_cause_is_a_path(
    g: DependencyGraph, status: NodeStatus, down: frozenset[Subject]
) -> None:
    cause = status.cause
    assert g.nodes[cause[-1]].subject in down
    for source, target in itertools.pairwise(cause):
        (edge,) = [e for e in g.nodes[source].depends_on if e.target == target]
        assert not (status.availability is UNAVAILABLE and edge.optional)


@given(st.data())
def test_unavailable_iff_a_required_path_reaches_a_down_subject(data: st.DataObject) -> None:
    g = data.draw(dags())
    down = data.draw(down_subjects(g))
    for nid, status in cascade(g, dict.fromkeys(down, DOWN)).items():
        unavailable = reaches_down(g, nid, down, required=True)
        degraded = not unavailable and reaches_down(g, nid, down, required=False)
        assert (status.availability is UNAVAILABLE) == unavailable, nid
        assert (status.availability is DEGRADED) == degraded, nid
        if status.availability is Availability.AVAILABLE:
            assert status.cause == ()
        else:
            assert status.cause[0] == nid
            assert_cause_is_a_path(g, status, down)


def fact_changes(g: DependencyGraph) -> st.SearchStrategy[list[FactChange]]:
    subjects = [node.subject for node in g.nodes.values()] + [subject("not-in-graph")]
    change = st.builds(FactChange, st.sampled_from(subjects), st.sampled_from([UP, DOWN]))
    return st.lists(change, max_size=25)


def final_health(changes: Iterable[FactChange]) -> Mapping[Subject, Health]:
    return {change.subject: change.health for change in changes}


@given(st.data())
def test_a_fold_of_changes_is_the_cascade_of_the_final_facts(data: st.DataObject) -> None:
    g = data.draw(dags())
    start = data.draw(down_subjects(g))
    kernel = DependencyCascade(g, dict.fromkeys(start, DOWN))
    replayed = dict(kernel.statuses)
    changes = data.draw(fact_changes(g))
    for change in changes:
        for output in kernel.apply(change):
            # The outputs alone carry the state: each starts where the last one ended.
            assert replayed[output.node] == output.before != output.after
            replayed[output.node] = output.after
    facts = {**dict.fromkeys(start, DOWN), **final_health(changes)}
    assert dict(kernel.statuses) == cascade(g, facts) == replayed


@given(st.data())
def test_the_order_facts_arrive_in_does_not_matter(data: st.DataObject) -> None:
    g = data.draw(dags())
    facts = data.draw(
        st.dictionaries(
            st.sampled_from(sorted(n.subject for n in g.nodes.values())),
            st.sampled_from([UP, DOWN]),
        )
    )
    changes = [FactChange(s, h) for s, h in facts.items()]
    shuffled = data.draw(st.permutations(changes))
    one, other = DependencyCascade(g), DependencyCascade(g)
    for change in changes:
        one.apply(change)
    for change in shuffled:
        other.apply(change)
    assert one.statuses == other.statuses == cascade(g, facts)


@st.composite
def directed_graphs(draw: st.DrawFn) -> list[Node]:
    """Any directed graph, cycles and self-loops included."""
    count = draw(st.integers(1, 8))
    names = [f"n{i}" for i in range(count)]
    return [
        tool(name, *draw(st.lists(st.sampled_from(names), unique=True, max_size=3)))
        for name in names
    ]


def is_acyclic(nodes: list[Node]) -> bool:
    """Kahn's algorithm: an independent check of what Tarjan decides."""
    waiting = {node.id: len(node.depends_on) for node in nodes}
    dependents: dict[str, list[str]] = {node.id: [] for node in nodes}
    for node in nodes:
        for edge in node.depends_on:
            dependents[edge.target].append(node.id)
    ready = [nid for nid, count in waiting.items() if count == 0]
    done = 0
    while ready:
        done += 1
        for dependent in dependents[ready.pop()]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return done == len(nodes)


@given(directed_graphs())
def test_only_acyclic_graphs_reach_the_evaluator(nodes: list[Node]) -> None:
    by_id = {node.id: node for node in nodes}
    try:
        g = DependencyGraph(nodes, max_depth=MAX_DEPENDENCY_DEPTH)
    except GraphError as exc:
        assert not is_acyclic(nodes)
        for where, text in exc.problems:
            cycle = text.removeprefix("cycle: ").split(" -> ")
            assert cycle[0] == cycle[-1] == where
            for source, target in itertools.pairwise(cycle):
                assert target in {edge.target for edge in by_id[source].depends_on}
        return
    assert is_acyclic(nodes)
    for nid, node in g.nodes.items():
        assert all(g.position[edge.target] < g.position[nid] for edge in node.depends_on)
