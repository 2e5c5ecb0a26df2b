"""alpha-solver's dependency_graph.yaml as pydantic models: syntax only (types, ranges).

References are resolved and the graph is checked (cycles, depth) in `dependencies`. The shape
is the seed's, so unknown keys are kept and noted (`OpenModel`): the file carries fields for a
deployment tool (startup_order, version_constraints, health_check...) that guardstream does not
evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainValidator

from workers.kernels.policy_limits import MAX_DEPENDENCY_DEPTH
from workers.policies.fields import OpenModel, OptBool, OptText, int_in, one_of, rule_error, text

STRATEGIES = ("fail", "warn")
CYCLES_ARE_REFUSED = (
    "guardstream refuses every cycle (a node on one would be available only if it already is)"
)


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of `depends_on`: a name, or ``{ref: <name>, optional: true|false}``."""

    name: str
    optional: bool | None = None
    """None: the target node's own `optional` decides."""


def reference(value: Any) -> Reference:
    if isinstance(value, str) and value:
        return Reference(value)
    if isinstance(value, dict) and set(value) <= {"ref", "optional"}:
        name, optional = value.get("ref"), value.get("optional")
        if isinstance(name, str) and name and (optional is None or isinstance(optional, bool)):
            return Reference(name, optional)
    raise rule_error("must be a name, or {ref: <name>, optional: true|false}")


def only(allowed: bool | str) -> Any:
    """A setting that guardstream fixes to `allowed` (cycles are always refused)."""
    shown = str(allowed).lower() if isinstance(allowed, bool) else allowed

    def check(value: Any) -> Any:
        if not (value is allowed or (isinstance(allowed, str) and value == allowed)):
            raise rule_error(f"must be {shown}: {CYCLES_ARE_REFUSED}")
        return value

    return check


OptStrategy = Annotated[str | None, PlainValidator(one_of(STRATEGIES))]
OptTrue = Annotated[bool | None, PlainValidator(only(True))]


class NodeSpec(OpenModel):
    id: OptText = None
    module: OptText = None
    tool: OptText = None
    vendor: OptText = None
    depends_on: list[Annotated[Reference, PlainValidator(reference)]] = []
    required_by: list[Annotated[str, PlainValidator(text)]] = []
    criticality: OptText = None
    optional: OptBool = None


class CircularDetection(OpenModel):
    enabled: OptTrue = None
    max_depth: Annotated[int | None, PlainValidator(int_in(1, MAX_DEPENDENCY_DEPTH))] = None
    fail_on_circular: OptTrue = None
    detection_algorithm: Annotated[str | None, PlainValidator(one_of(("tarjan",)))] = None


class ResolutionStrategy(OpenModel):
    missing_required: OptStrategy = None
    missing_optional: OptStrategy = None
    circular_dependency: Annotated[str | None, PlainValidator(only("fail"))] = None


class DependencySpec(OpenModel):
    dependencies: dict[str, dict[str, Any]] = {}  # entries validated one by one
    circular_detection: CircularDetection = CircularDetection()
    resolution_strategy: ResolutionStrategy = ResolutionStrategy()
