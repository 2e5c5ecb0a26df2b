"""Dependency policy (issue 13): which tools, vendors and modules a tool needs to work.

`load_dependency_policy(path, mode)` reads alpha-solver's ``dependency_graph.yaml`` shape::

    dependencies:
      dep.tool.t001:                 # the node id (`id:`, when given, must equal it)
        tool: t001                   # what it guards: exactly one of module, tool, vendor
        depends_on: ["vendor.openai", "sec.openai.prod", {ref: cache, optional: true}]
        required_by: ["planner"]     # the same edges, written from the other end
        criticality: essential       # carried into decisions, not evaluated
        optional: false              # true: the nodes depending on it degrade, not fail
    circular_detection: {max_depth: 10, fail_on_circular: true, detection_algorithm: tarjan}
    resolution_strategy: {missing_required: fail, missing_optional: warn}

The result holds a `DependencyGraph` (acyclic, checked: workers.kernels.dependency_graph) for the
cascade. The runtime mode changes nothing; `mode` keeps the loaders' signatures alike.

**References** (`depends_on`, `required_by`) resolve, first match wins, to:

1. the node with that id (``dep.core.loader``);
2. the node ``dep.<reference>`` (``vendor.openai`` -> ``dep.vendor.openai``);
3. the node guarding a module, tool or vendor of that name (``loader`` -> ``dep.core.loader``);
   two such nodes make the reference ambiguous, an error (write the node id);
4. an **external dependency**, when the reference is dotted and its first part is none of the
   graph's namespaces (``dep``, ``module``, ``tool``, ``vendor`` and the first part of every
   node id after ``dep.``: ``core``, ``tool``, ``vendor`` in the seed): ``network.egress``,
   ``secrets.api_key``, ``sec.openai.prod``. It becomes a leaf node of that id, as healthy as
   the fact ``external:<reference>`` says (up until a fact says down), and the loader notes it.

Anything else is **unresolved**: a bare name, or a name in the graph's namespaces, that no node
answers to (``planner``, ``vendor.opnai``): a typo or a missing node. In `depends_on`,
``resolution_strategy.missing_required`` (default ``fail``) decides for a required reference
and ``missing_optional`` (default ``warn``) for an optional one (``{ref: x, optional: true}``):
``fail`` refuses the file, naming the reference; ``warn`` keeps it as an external dependency and
notes it. An unresolved name in `required_by` has no node to add an edge to: it is noted and
ignored, whatever the strategy.

**Optional**: an edge is optional when its reference says so, else when its target node is
(`optional`, default false); an external dependency is required unless its reference says
otherwise. A reference given twice (or in both directions) is one edge, required if either is.

**Cycles** are refused whatever the file says: `fail_on_circular`, `enabled` must be true and
`circular_dependency` fail (there is no order in which to evaluate a cycle: a node on one would
be available only if it already is). The error names each cycle at its first node
(``dependencies.dep.a: cycle: dep.a -> dep.b -> dep.a``). A chain of more than
``circular_detection.max_depth`` links (default 10, at most MAX_DEPENDENCY_DEPTH) is refused
too, named from its first node. Caps (workers.kernels.policy_limits): MAX_DEPENDENCY_NODES
nodes, MAX_DEPENDENCY_REFERENCES references in each node's `depends_on` and in its
`required_by`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from schemas.limits import MAX_ID_LEN
from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.dependency_graph import (
    DEFAULT_MAX_DEPTH,
    DependencyGraph,
    Edge,
    GraphError,
    GuardKind,
    Node,
    Subject,
)
from workers.kernels.policy_limits import MAX_DEPENDENCY_NODES, MAX_DEPENDENCY_REFERENCES
from workers.policies.dependency_models import (
    DependencySpec,
    NodeSpec,
    Reference,
    ResolutionStrategy,
)
from workers.policies.files import (
    LoadedPolicy,
    Problems,
    builtin_policy_document,
    load_policy_document,
    require_kind,
)
from workers.policies.parsing import (
    note_unknown_keys,
    parse_policy,
    validate_entry,
    validated_entries,
)
from workers.settings import Mode

# Looked for in a policy directory, in this order (the first is the seed's name).
FILE_STEMS = ("dependency_graph", "dependencies")

_GUARDS = (GuardKind.MODULE, GuardKind.TOOL, GuardKind.VENDOR)
_NAMESPACES: Final = frozenset({"dep", *_GUARDS})
_NOT_EVALUATED = {"version_conflict": "versions are not evaluated by guardstream; ignored"}


@dataclass(frozen=True, eq=False)
class DependencyPolicy(LoadedPolicy):
    """A validated dependency policy: its graph, ready for the cascade."""

    graph: DependencyGraph

    def node_for(self, kind: GuardKind, name: str) -> Node | None:
        """The node guarding the module, tool or vendor `name` (None: not in the graph)."""
        return self.graph.node_for(Subject(kind, name))

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> DependencyPolicy:
        """The policy a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.DEPENDENCIES)
        return _from_spec(doc.spec, doc)


def load_dependency_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> DependencyPolicy:
    """Read and validate a dependency graph file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.DEPENDENCIES)
    return _from_spec(spec, doc)


def default_dependency_policy(mode: Mode = Mode.DEVELOPMENT) -> DependencyPolicy:
    """No file: an empty graph (nothing depends on anything; every check passes this part)."""
    spec, doc = builtin_policy_document(PolicyKind.DEPENDENCIES, {"dependencies": {}})
    return _from_spec(spec, doc)


def _from_spec(spec: Mapping[str, Any], doc: PolicyDocument) -> DependencyPolicy:
    graph, loaded = parse_policy(doc, spec, MappingProxyType({}), _parse)
    return DependencyPolicy(**loaded, graph=graph)


# --- parsing ---


@dataclass(frozen=True, slots=True)
class _Declared:
    """A node of the file whose own fields are valid (its references are not resolved yet)."""

    id: str
    path: str
    subject: Subject
    spec: NodeSpec


def _parse(
    spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems
) -> DependencyGraph | None:
    model = validate_entry(DependencySpec, spec, problems)
    if model is None:
        return None
    note_unknown_keys(problems, model, skip=("version", "schema_version"))
    note_unknown_keys(problems, model.circular_detection, "circular_detection")
    strategy = model.resolution_strategy
    note_unknown_keys(problems, strategy, "resolution_strategy", why=_NOT_EVALUATED)
    if len(model.dependencies) > MAX_DEPENDENCY_NODES:
        limit = f"at most {MAX_DEPENDENCY_NODES:,} nodes (the limit)"
        problems.error("dependencies", limit, len(model.dependencies))
        return None
    declared = _declared(model.dependencies, problems)
    if problems.errors:  # references to a broken node would only add confusing errors
        return None
    nodes = _Resolver(declared, strategy, problems).nodes()
    if problems.errors:
        return None
    try:
        return DependencyGraph(nodes, model.circular_detection.max_depth or DEFAULT_MAX_DEPTH)
    except GraphError as exc:
        for node, text in exc.problems:
            problems.error(f"dependencies.{node}", text)
        return None


def _declared(entries: Mapping[str, Any], problems: Problems) -> list[_Declared]:
    found = []
    for nid, path, spec in validated_entries(NodeSpec, "dependencies", entries, problems):
        note_unknown_keys(problems, spec, path)
        if not nid or len(nid) > MAX_ID_LEN:
            problems.error(path, f"id must be 1-{MAX_ID_LEN} characters", nid)
        if spec.id is not None and spec.id != nid:
            problems.error(f"{path}.id", f"must equal the node's key {nid!r}", spec.id)
        for key in ("depends_on", "required_by"):
            if len(getattr(spec, key)) > MAX_DEPENDENCY_REFERENCES:
                limit = f"at most {MAX_DEPENDENCY_REFERENCES} references (the limit)"
                problems.error(f"{path}.{key}", limit, len(getattr(spec, key)))
        guards = [Subject(kind, getattr(spec, kind)) for kind in _GUARDS if getattr(spec, kind)]
        if len(guards) != 1:
            named = {kind.value: getattr(spec, kind) for kind in _GUARDS if getattr(spec, kind)}
            problems.error(path, "must guard exactly one of module, tool, vendor", named)
            continue
        found.append(_Declared(nid, path, guards[0], spec))
    return found


class _Resolver:
    """Turns the declared nodes' references into edges (see the module docstring)."""

    def __init__(
        self, declared: Iterable[_Declared], strategy: ResolutionStrategy, problems: Problems
    ) -> None:
        self.declared = {node.id: node for node in declared}
        self.strategy = strategy
        self.problems = problems
        self.by_name: dict[str, list[str]] = {}
        for node in self.declared.values():
            self.by_name.setdefault(node.subject.name, []).append(node.id)
        self.namespaces = _NAMESPACES | {_namespace(nid) for nid in self.declared}
        self.externals: dict[str, str] = {}  # name -> where first referred to
        self.warned: set[str] = set()  # unresolved names kept as externals
        self.edges: dict[str, dict[str, bool]] = {nid: {} for nid in self.declared}
        """source -> target -> optional"""

    def nodes(self) -> list[Node]:
        for node in self.declared.values():
            for i, ref in enumerate(node.spec.depends_on):
                self._depends_on(node.id, ref, f"{node.path}.depends_on[{i}]")
            for i, name in enumerate(node.spec.required_by):
                self._required_by(node, name, f"{node.path}.required_by[{i}]")
        for name, path in self.externals.items():
            if name in self.warned:
                continue  # its note says so already
            self.problems.note(
                path, f"{name} is an external dependency: up until a fact external:{name} says down"
            )
        found = [
            Node(
                nid,
                node.subject,
                tuple(Edge(target, optional) for target, optional in self.edges[nid].items()),
                node.spec.criticality,
            )
            for nid, node in self.declared.items()
        ]
        found += [Node(name, Subject(GuardKind.EXTERNAL, name)) for name in self.externals]
        return found

    def _depends_on(self, source: str, ref: Reference, path: str) -> None:
        target = self._resolve(ref.name, path)
        if target is not None:
            stated = ref.optional
            optional = self.declared[target].spec.optional if stated is None else stated
        elif self._ambiguous(ref.name):
            return  # the error is recorded
        else:
            target = self._external(ref, path)
            optional = ref.optional
        if target is not None:
            self._add(source, target, bool(optional))

    def _required_by(self, node: _Declared, name: str, path: str) -> None:
        dependent = self._resolve(name, path)
        if dependent is not None:
            self._add(dependent, node.id, bool(node.spec.optional))
        elif not self._ambiguous(name):
            self.problems.note(path, f"no node {name} to depend on {node.id}; ignored")

    def _add(self, source: str, target: str, optional: bool) -> None:
        edges = self.edges[source]
        edges[target] = edges.get(target, True) and optional  # required if stated so once

    def _resolve(self, name: str, path: str) -> str | None:
        """The node `name` refers to (steps 1-3), or None (an error if it is ambiguous)."""
        for candidate in (name, f"dep.{name}"):
            if candidate in self.declared:
                return candidate
        named = self.by_name.get(name, [])
        if len(named) > 1:
            rule = f"ambiguous: {', '.join(named)} all guard something named so; write a node id"
            self.problems.error(path, rule, name)
        return named[0] if len(named) == 1 else None

    def _ambiguous(self, name: str) -> bool:
        return len(self.by_name.get(name, [])) > 1

    def _external(self, ref: Reference, path: str) -> str | None:
        """The external node `ref` stands for (step 4, or an unresolved reference the strategy
        keeps); None, with the error recorded, when the strategy refuses it."""
        head, dot, _ = ref.name.partition(".")
        if not (dot and head not in self.namespaces):
            setting = "missing_optional" if ref.optional else "missing_required"
            action = getattr(self.strategy, setting) or ("warn" if ref.optional else "fail")
            missing = f"no node {ref.name} or dep.{ref.name}, nor any named {ref.name}"
            if action == "fail":
                rule = f"{missing} (resolution_strategy.{setting}: fail)"
                self.problems.error(path, rule, ref.name)
                return None
            self.problems.note(path, f"{missing}: an external dependency ({setting}: warn)")
            self.warned.add(ref.name)
        self.externals.setdefault(ref.name, path)
        return ref.name


def _namespace(node_id: str) -> str:
    """The part of `node_id` a reference starts with: ``core`` for ``dep.core.loader``."""
    parts = node_id.split(".")
    return parts[1] if parts[0] == "dep" and len(parts) > 2 else parts[0]
