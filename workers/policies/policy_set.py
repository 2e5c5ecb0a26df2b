"""Every policy a worker or a replay runs under, from one `--policy` path.

A directory holds one file per kind (`breakers.yaml`, `budgets.yaml`, `slos.yaml`,
`data_classification.yaml`, `audit.yaml`, `dependency_graph.yaml`, `vendors.yaml`, or the
seeds' names); a kind without a file runs under its
built-in default. A single file is the one kind its name says (e.g.
`configs/seeds/alpha-solver/circuit_breakers.json`), the others default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workers.errors import ConfigError
from workers.policies import (
    audit_event_types,
    breakers,
    budgets,
    classification,
    dependencies,
    slos,
    vendor_registry,
)
from workers.policies.audit_event_types import AuditPolicy, default_audit_policy, load_audit_policy
from workers.policies.breakers import BreakerPolicy, default_breaker_policy, load_breaker_policy
from workers.policies.budgets import BudgetPolicy, default_budget_policy, load_budget_policy
from workers.policies.classification import (
    ClassificationPolicy,
    default_classification_policy,
    load_classification_policy,
)
from workers.policies.dependencies import (
    DependencyPolicy,
    default_dependency_policy,
    load_dependency_policy,
)
from workers.policies.files import has_policy_file
from workers.policies.slos import SloPolicy, default_slo_policy, load_slo_policy
from workers.policies.vendor_registry import (
    VendorRegistry,
    default_vendor_registry,
    load_vendor_registry,
)
from workers.settings import Mode


@dataclass(frozen=True, slots=True)
class PolicySet:
    breakers: BreakerPolicy
    budgets: BudgetPolicy
    slos: SloPolicy = field(default_factory=default_slo_policy)
    classification: ClassificationPolicy = field(default_factory=default_classification_policy)
    """The PII/PHI patterns masked before anything reaches the audit trail, alerts or logs."""
    audit: AuditPolicy = field(default_factory=default_audit_policy)
    """Audit event types: severity, required fields, retention."""
    dependencies: DependencyPolicy = field(default_factory=default_dependency_policy)
    """Which tools, vendors and modules depend on which: the cascade's graph."""
    vendors: VendorRegistry = field(default_factory=default_vendor_registry)
    """Which vendor is in which group (`enterprise_only`...): the data-class rules' vendors."""


@dataclass(frozen=True, slots=True)
class _Kind:
    """One field of a PolicySet: the files that hold it, how they are read, its default."""

    field: str
    file_stems: tuple[str, ...]
    load: Callable[[Path, Mode], Any]
    default: Callable[[Mode], Any]


# In PolicySet's order, which is also the order the files of a directory are read in.
_KINDS = (
    _Kind("breakers", breakers.FILE_STEMS, load_breaker_policy, default_breaker_policy),
    _Kind("budgets", budgets.FILE_STEMS, load_budget_policy, default_budget_policy),
    _Kind("slos", slos.FILE_STEMS, load_slo_policy, default_slo_policy),
    _Kind(
        "classification",
        classification.FILE_STEMS,
        load_classification_policy,
        default_classification_policy,
    ),
    _Kind("audit", audit_event_types.FILE_STEMS, load_audit_policy, default_audit_policy),
    _Kind(
        "dependencies",
        dependencies.FILE_STEMS,
        load_dependency_policy,
        default_dependency_policy,
    ),
    _Kind("vendors", vendor_registry.FILE_STEMS, load_vendor_registry, default_vendor_registry),
)


def default_policies(mode: Mode) -> PolicySet:
    return PolicySet(**{kind.field: kind.default(mode) for kind in _KINDS})


def load_policies(path: Path | None, mode: Mode) -> PolicySet:
    """The policies under `path` (a directory or one file); ConfigError names what is wrong."""
    if path is None:
        return default_policies(mode)
    if path.is_file():
        named = [kind for kind in _KINDS if path.stem in kind.file_stems]
        if not named:
            known = ", ".join(stem for kind in _KINDS for stem in kind.file_stems)
            raise ConfigError(f"{path}: which kind of policy is it? Name it one of: {known}")
        return replace(default_policies(mode), **{named[0].field: named[0].load(path, mode)})
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    return PolicySet(
        **{
            kind.field: kind.load(path, mode)
            if has_policy_file(path, kind.file_stems)
            else kind.default(mode)
            for kind in _KINDS
        }
    )


def load_audit_types(path: Path | None, mode: Mode) -> AuditPolicy:
    """Only the audit event-type policy at `path` (what sizes the audit topic's retention),
    without reading the other kinds."""
    if path is not None and (
        (path.is_file() and path.stem in audit_event_types.FILE_STEMS)
        or (path.is_dir() and has_policy_file(path, audit_event_types.FILE_STEMS))
    ):
        return load_audit_policy(path, mode)
    return default_audit_policy(mode)
