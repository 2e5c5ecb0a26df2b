"""Dependency policy loading (workers/policies/dependencies.py): the seed's
dependency_graph.yaml, how references resolve, optional edges, and errors that name the file,
the path inside it and the bad value: cycles, depth, unresolved references, caps, types."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.policy import PolicyDocument, PolicyKind
from tests.support.policy_files import ALPHA_SOLVER_SEEDS, PolicyFiles, read_spec
from workers.errors import ConfigError
from workers.kernels.dependency_graph import GuardKind, Subject
from workers.kernels.policy_limits import (
    MAX_DEPENDENCY_DEPTH,
    MAX_DEPENDENCY_NODES,
    MAX_DEPENDENCY_REFERENCES,
)
from workers.policies.dependencies import (
    DependencyPolicy,
    default_dependency_policy,
    load_dependency_policy,
)
from workers.settings import Mode

SEED = ALPHA_SOLVER_SEEDS / "dependency_graph.yaml"
FILES = PolicyFiles(load_dependency_policy, "dependency_graph.yaml")
write, error_at = FILES.write, FILES.error_at


def edges(policy: DependencyPolicy, node: str) -> list[tuple[str, bool]]:
    return [(edge.target, edge.optional) for edge in policy.graph.nodes[node].depends_on]


def graph_spec(nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"dependencies": nodes, **top}


def load(tmp_path: Path, nodes: dict[str, Any], **top: Any) -> DependencyPolicy:
    return load_dependency_policy(write(tmp_path, graph_spec(nodes, **top)))


def refused(tmp_path: Path, nodes: dict[str, Any], where: str, **top: Any) -> str:
    """The error loading `nodes`, which must be at `where` in the file."""
    return error_at(write(tmp_path, graph_spec(nodes, **top)), where)


# --- the seed --------------------------------------------------------------------------------


def test_seed_copy_is_byte_identical_to_the_seed_given() -> None:
    # test_seed_copies.py checks the others; ../shared is not there on a fresh clone.
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == (
        "4d259d0c543d8d59ae863a01f77f6c605ce4d1619bc0e80a31d4f5c80a500fed"
    )


def test_seed_loads_with_its_references_resolved() -> None:
    policy = load_dependency_policy(SEED.parent)  # a directory: finds dependency_graph.yaml
    assert (policy.name, policy.source) == ("dependency_graph", str(SEED))
    assert policy.document.kind is PolicyKind.DEPENDENCIES
    graph = policy.graph
    assert edges(policy, "dep.core.selector") == [("dep.core.loader", False)]  # by module name
    assert edges(policy, "dep.tool.t001") == [
        ("dep.vendor.openai", False),  # vendor.openai -> dep.vendor.openai
        ("sec.openai.prod", False),  # external
    ]
    assert edges(policy, "dep.vendor.openai") == [
        ("network.egress", False),
        ("secrets.api_key", False),
    ]
    assert graph.nodes["network.egress"].subject == Subject(GuardKind.EXTERNAL, "network.egress")
    assert graph.nodes["dep.core.loader"].criticality == "essential"
    assert policy.node_for(GuardKind.TOOL, "t001") == graph.nodes["dep.tool.t001"]
    assert policy.node_for(GuardKind.VENDOR, "mistral") is None
    assert len(graph) == 8  # five nodes, three external dependencies


def test_seed_notes_say_what_is_read_in_a_particular_way() -> None:
    notes = load_dependency_policy(SEED).notes
    loader, openai = "dependencies.dep.core.loader", "dependencies.dep.vendor.openai"
    assert {
        f"{loader}.required_by[1]: no node planner to depend on dep.core.loader; ignored",
        f"{openai}.depends_on[0]: network.egress is an external dependency: up until a fact "
        "external:network.egress says down",
        f"{openai}.health_check: not evaluated by guardstream; ignored",
        "resolution_strategy.version_conflict: versions are not evaluated by guardstream; ignored",
    } <= set(notes)
    assert not any(note.startswith(("version", "schema_version")) for note in notes)


def test_mode_changes_nothing() -> None:
    assert (
        load_dependency_policy(SEED, Mode.PRODUCTION).graph.nodes
        == load_dependency_policy(SEED, Mode.DEVELOPMENT).graph.nodes
    )


def test_from_document_round_trip_and_kind_check() -> None:
    policy = load_dependency_policy(SEED)
    again = DependencyPolicy.from_document(
        PolicyDocument.model_validate_json(policy.document.model_dump_json())
    )
    assert again.version == policy.version
    assert again.graph.nodes == policy.graph.nodes
    wrong = PolicyDocument.from_spec(PolicyKind.BUDGETS, "x", {}, source="x.yaml")
    with pytest.raises(ConfigError, match=re.escape("x.yaml: policy kind must be dependencies")):
        DependencyPolicy.from_document(wrong)


def test_default_is_an_empty_graph() -> None:
    default = default_dependency_policy()
    assert default.source == "<built-in>"
    assert len(default.graph) == 0
    assert default.notes == ()


def test_second_file_stem_is_found(tmp_path: Path) -> None:
    write(tmp_path, graph_spec({"dep.a": {"tool": "a"}}), "dependencies.yaml")
    assert list(load_dependency_policy(tmp_path).graph.nodes) == ["dep.a"]


# --- references ------------------------------------------------------------------------------


def test_a_reference_resolves_by_id_then_dep_prefix_then_guarded_name(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        {
            "dep.app": {"module": "app", "depends_on": ["dep.db", "vendor.x", "cachesvc"]},
            "dep.db": {"module": "db"},
            "dep.vendor.x": {"vendor": "x"},
            "dep.cache": {"module": "cachesvc"},
        },
    )
    assert edges(policy, "dep.app") == [
        ("dep.db", False),
        ("dep.vendor.x", False),
        ("dep.cache", False),
    ]
    assert policy.notes == ()


def test_an_exact_id_wins_over_a_guarded_name(tmp_path: Path) -> None:
    # `db` is both the id of one node and the module another guards.
    nodes = {"app": {"module": "app", "depends_on": ["db"]}, "db": {"tool": "t"}}
    nodes["other"] = {"module": "db"}
    assert edges(load(tmp_path, nodes), "app") == [("db", False)]


def test_an_ambiguous_name_is_refused(tmp_path: Path) -> None:
    nodes = {
        "dep.a": {"module": "a", "depends_on": ["x"]},
        "dep.t": {"tool": "x"},
        "dep.v": {"vendor": "x"},
    }
    message = refused(tmp_path, nodes, "dependencies.dep.a.depends_on[0]")
    assert (
        "ambiguous: dep.t, dep.v all guard something named so; write a node id, not 'x'" in message
    )


@pytest.mark.parametrize("reference", ["planner", "vendor.opnai", "core.loadr", "tool.x", "dep.zz"])
def test_an_unresolved_required_reference_fails_by_default(tmp_path: Path, reference: str) -> None:
    nodes = {"dep.core.a": {"module": "a", "depends_on": [reference]}}
    message = refused(tmp_path, nodes, "dependencies.dep.core.a.depends_on[0]")
    assert f"nor any named {reference} (resolution_strategy.missing_required: fail)" in message


def test_missing_required_warn_keeps_it_as_an_external_dependency(tmp_path: Path) -> None:
    strategy = {"missing_required": "warn"}
    nodes = {"dep.a": {"module": "a", "depends_on": ["planner"]}}
    policy = load(tmp_path, nodes, resolution_strategy=strategy)
    assert edges(policy, "dep.a") == [("planner", False)]
    assert policy.graph.nodes["planner"].subject == Subject(GuardKind.EXTERNAL, "planner")
    assert policy.notes == (
        "dependencies.dep.a.depends_on[0]: no node planner or dep.planner, nor any named "
        "planner: an external dependency (missing_required: warn)",
    )


def test_an_unresolved_optional_reference_warns_by_default_and_can_fail(tmp_path: Path) -> None:
    nodes = {"dep.a": {"module": "a", "depends_on": [{"ref": "planner", "optional": True}]}}
    policy = load(tmp_path, nodes)
    assert edges(policy, "dep.a") == [("planner", True)]
    assert "(missing_optional: warn)" in policy.notes[0]
    strategy = {"missing_optional": "fail"}
    message = refused(
        tmp_path, nodes, "dependencies.dep.a.depends_on[0]", resolution_strategy=strategy
    )
    assert "(resolution_strategy.missing_optional: fail)" in message


def test_a_dotted_reference_outside_the_graphs_namespaces_is_external(tmp_path: Path) -> None:
    nodes = {"dep.core.a": {"module": "a", "depends_on": ["network.egress", "sec.x.prod"]}}
    policy = load(tmp_path, nodes, resolution_strategy={"missing_required": "fail"})
    assert edges(policy, "dep.core.a") == [("network.egress", False), ("sec.x.prod", False)]


def test_optional_comes_from_the_reference_else_the_target_node(tmp_path: Path) -> None:
    nodes = {
        "dep.app": {
            "module": "app",
            "depends_on": ["cache", {"ref": "db", "optional": True}, {"ref": "log"}],
        },
        "dep.cache": {"module": "cache", "optional": True},
        "dep.db": {"module": "db"},
        "dep.log": {"module": "log", "optional": True},
        "dep.job": {"module": "job", "depends_on": [{"ref": "cache", "optional": False}]},
    }
    policy = load(tmp_path, nodes)
    assert edges(policy, "dep.app") == [("dep.cache", True), ("dep.db", True), ("dep.log", True)]
    assert edges(policy, "dep.job") == [("dep.cache", False)]


def test_required_by_adds_the_edge_from_the_other_end_once(tmp_path: Path) -> None:
    nodes = {
        "dep.app": {"module": "app", "depends_on": [{"ref": "lib", "optional": False}]},
        "dep.lib": {"module": "lib", "required_by": ["app", "dep.job"], "optional": True},
        "dep.job": {"module": "job"},
    }
    policy = load(tmp_path, nodes)
    # Stated required once (app's own reference): required.
    assert edges(policy, "dep.app") == [("dep.lib", False)]
    assert edges(policy, "dep.job") == [("dep.lib", True)]


def test_a_reference_given_twice_is_one_edge(tmp_path: Path) -> None:
    nodes = {
        "dep.a": {"module": "a", "depends_on": ["b", "dep.b", {"ref": "b", "optional": True}]},
        "dep.b": {"module": "b"},
    }
    assert edges(load(tmp_path, nodes), "dep.a") == [("dep.b", False)]


# --- cycles and depth ------------------------------------------------------------------------


def test_a_cycle_is_refused_and_named(tmp_path: Path) -> None:
    nodes = {
        "dep.a": {"module": "a", "depends_on": ["b"]},
        "dep.b": {"module": "b", "depends_on": ["dep.a"]},
        "dep.c": {"module": "c", "required_by": ["c"]},
    }
    file = write(tmp_path, graph_spec(nodes))
    assert FILES.errors(file) == (
        f"{file}: dependencies.dep.a: cycle: dep.a -> dep.b -> dep.a\n"
        f"{file}: dependencies.dep.c: cycle: dep.c -> dep.c"
    )


def test_a_cycle_through_required_by_is_found_too(tmp_path: Path) -> None:
    nodes = {
        "dep.a": {"module": "a", "depends_on": ["b"], "required_by": ["b"]},
        "dep.b": {"module": "b"},
    }
    message = refused(tmp_path, nodes, "dependencies.dep.a")
    assert message.endswith("cycle: dep.a -> dep.b -> dep.a")


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("circular_detection", {"fail_on_circular": False}),
        ("circular_detection", {"enabled": False}),
        ("circular_detection", {"detection_algorithm": "kosaraju"}),
        ("resolution_strategy", {"circular_dependency": "warn"}),
        ("resolution_strategy", {"missing_required": "ignore"}),
    ],
)
def test_cycles_cannot_be_allowed(tmp_path: Path, section: str, value: dict[str, Any]) -> None:
    (key,) = value
    refused(tmp_path, {"dep.a": {"module": "a"}}, f"{section}.{key}", **{section: value})


@pytest.mark.parametrize(
    ("section", "key", "value", "shown"),
    [
        ("circular_detection", "fail_on_circular", False, "must be true"),
        ("circular_detection", "enabled", "true", "must be true"),
        ("resolution_strategy", "circular_dependency", "warn", "must be fail"),
    ],
)
def test_settings_that_would_allow_a_cycle_say_why(
    tmp_path: Path, section: str, key: str, value: Any, shown: str
) -> None:
    message = refused(tmp_path, {}, f"{section}.{key}", **{section: {key: value}})
    assert f"{shown}: guardstream refuses every cycle" in message


def chain(links: int) -> dict[str, Any]:
    nodes = {f"dep.n{i}": {"module": f"n{i}", "depends_on": [f"n{i + 1}"]} for i in range(links)}
    nodes[f"dep.n{links}"] = {"module": f"n{links}"}
    return nodes


def test_the_seed_default_max_depth_is_ten_links(tmp_path: Path) -> None:
    assert len(load(tmp_path, chain(10)).graph) == 11
    message = refused(tmp_path, chain(11), "dependencies.dep.n0")
    assert "a chain of 11 links is deeper than max_depth 10: dep.n0 -> dep.n1 -> " in message


def test_max_depth_is_the_files_and_capped(tmp_path: Path) -> None:
    assert len(load(tmp_path, chain(3), circular_detection={"max_depth": 3}).graph) == 4
    refused(tmp_path, chain(3), "dependencies.dep.n0", circular_detection={"max_depth": 2})
    over = {"max_depth": MAX_DEPENDENCY_DEPTH + 1}
    message = refused(tmp_path, {}, "circular_detection.max_depth", circular_detection=over)
    assert (
        f"must be an integer in [1, {MAX_DEPENDENCY_DEPTH}], not {MAX_DEPENDENCY_DEPTH + 1}"
        in message
    )


# --- caps and types --------------------------------------------------------------------------


def test_node_count_is_capped(tmp_path: Path) -> None:
    nodes = {f"n{i}": {"module": f"n{i}"} for i in range(MAX_DEPENDENCY_NODES + 1)}
    message = refused(tmp_path, nodes, "dependencies")
    assert (
        f"at most {MAX_DEPENDENCY_NODES:,} nodes (the limit), not {MAX_DEPENDENCY_NODES + 1}"
        in message
    )


@pytest.mark.parametrize("key", ["depends_on", "required_by"])
def test_references_per_node_are_capped(tmp_path: Path, key: str) -> None:
    nodes = {
        "dep.a": {"module": "a", key: [f"x.n{i}" for i in range(MAX_DEPENDENCY_REFERENCES + 1)]}
    }
    message = refused(tmp_path, nodes, f"dependencies.dep.a.{key}")
    assert f"at most {MAX_DEPENDENCY_REFERENCES} references (the limit)" in message


@pytest.mark.parametrize(
    ("node", "where", "rule"),
    [
        ({"module": "a", "depends_on": "b"}, ".depends_on", "valid list"),
        ({"module": "a", "depends_on": [5]}, ".depends_on[0]", "must be a name, or {ref"),
        ({"module": "a", "depends_on": [{"ref": "b", "why": 1}]}, ".depends_on[0]", "a name"),
        ({"module": "a", "depends_on": [{"ref": "b", "optional": 1}]}, ".depends_on[0]", "a name"),
        ({"module": "a", "required_by": [""]}, ".required_by[0]", "non-empty string"),
        ({"module": "a", "optional": "no"}, ".optional", "must be true or false, not 'no'"),
        ({"module": 7}, ".module", "must be a non-empty string, not 7"),
        ({"module": "a", "criticality": ""}, ".criticality", "non-empty string"),
        ({"module": "a", "id": "dep.b"}, ".id", "must equal the node's key 'dep.a'"),
        ({"depends_on": []}, "", "must guard exactly one of module, tool, vendor, not {}"),
        ({"tool": "t", "vendor": "v"}, "", "vendor, not {'tool': 't', 'vendor': 'v'}"),
        ("loader", "", "valid dictionary"),
    ],
)
def test_a_bad_node_is_named_with_its_path(
    tmp_path: Path, node: Any, where: str, rule: str
) -> None:
    assert rule in refused(tmp_path, {"dep.a": node}, f"dependencies.dep.a{where}")


def test_every_bad_node_is_reported_at_once(tmp_path: Path) -> None:
    nodes = {
        "dep.a": {"module": 1},
        "dep.b": {"tool": "b", "optional": 2},
        "dep.c": {"module": "c"},
    }
    file = write(tmp_path, graph_spec(nodes))
    lines = FILES.errors(file).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "dependencies.dep.a.module",
        "dependencies.dep.b.optional",
    ]


def test_two_nodes_guarding_one_subject_are_refused(tmp_path: Path) -> None:
    nodes = {"dep.a": {"vendor": "openai"}, "dep.b": {"vendor": "openai"}}
    message = refused(tmp_path, nodes, "dependencies.dep.b")
    assert message.endswith("vendor openai is guarded by dep.a already")


def test_a_bad_top_level_is_named(tmp_path: Path) -> None:
    assert "valid dictionary" in error_at(write(tmp_path, {"dependencies": None}), "dependencies")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    file = write(tmp_path, "dependencies:\n  dep.a: {module: a\n")
    assert re.match(
        rf"{re.escape(str(file))}: line \d+, column \d+: invalid YAML", FILES.error(file)
    )


def test_seed_with_a_typo_in_a_vendor_reference_is_refused(tmp_path: Path) -> None:
    spec = read_spec(SEED)
    spec["dependencies"]["dep.tool.t001"]["depends_on"][0] = "vendor.opnai"
    message = error_at(write(tmp_path, spec), "dependencies.dep.tool.t001.depends_on[0]")
    assert "no node vendor.opnai or dep.vendor.opnai" in message
