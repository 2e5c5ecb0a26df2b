"""Every policy a worker or a replay runs under, from one `--policy` path.

A directory holds one file per kind (`breakers.yaml`, `budgets.yaml`, `slos.yaml`,
`data_classification.yaml`, or the seeds' names); a kind without a file runs under its
built-in default. A single file is the one kind its name says (e.g.
`configs/seeds/alpha-solver/circuit_breakers.json`), the others default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workers.audit import classification, event_types
from workers.audit.classification import (
    ClassificationPolicy,
    default_classification_policy,
    load_classification_policy,
)
from workers.audit.event_types import AuditPolicy, default_audit_policy, load_audit_policy
from workers.errors import ConfigError
from workers.policies import breakers, budgets, slos
from workers.policies.breakers import BreakerPolicy, default_breaker_policy, load_breaker_policy
from workers.policies.budgets import BudgetPolicy, default_budget_policy, load_budget_policy
from workers.policies.files import has_policy_file
from workers.policies.slos import SloPolicy, default_slo_policy, load_slo_policy
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


def default_policies(mode: Mode) -> PolicySet:
    return PolicySet(
        default_breaker_policy(mode), default_budget_policy(mode), default_slo_policy(mode)
    )


def load_policies(path: Path | None, mode: Mode) -> PolicySet:
    """The policies under `path` (a directory or one file); ConfigError names what is wrong."""
    if path is None:
        return default_policies(mode)
    if path.is_file():
        stem = path.stem
        defaults = default_policies(mode)
        if stem in breakers.FILE_STEMS:
            return PolicySet(load_breaker_policy(path, mode), defaults.budgets, defaults.slos)
        if stem in budgets.FILE_STEMS:
            return PolicySet(defaults.breakers, load_budget_policy(path, mode), defaults.slos)
        if stem in slos.FILE_STEMS:
            return PolicySet(defaults.breakers, defaults.budgets, load_slo_policy(path, mode))
        if stem in event_types.FILE_STEMS:
            return PolicySet(
                defaults.breakers,
                defaults.budgets,
                defaults.slos,
                defaults.classification,
                load_audit_policy(path, mode),
            )
        if stem in classification.FILE_STEMS:
            return PolicySet(
                defaults.breakers,
                defaults.budgets,
                defaults.slos,
                load_classification_policy(path, mode),
            )
        known = ", ".join(
            (
                *breakers.FILE_STEMS,
                *budgets.FILE_STEMS,
                *slos.FILE_STEMS,
                *classification.FILE_STEMS,
                *event_types.FILE_STEMS,
            )
        )
        raise ConfigError(f"{path}: which kind of policy is it? Name it one of: {known}")
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    return PolicySet(
        load_breaker_policy(path, mode)
        if has_policy_file(path, breakers.FILE_STEMS)
        else default_breaker_policy(mode),
        load_budget_policy(path, mode)
        if has_policy_file(path, budgets.FILE_STEMS)
        else default_budget_policy(mode),
        load_slo_policy(path, mode)
        if has_policy_file(path, slos.FILE_STEMS)
        else default_slo_policy(mode),
        load_classification_policy(path, mode)
        if has_policy_file(path, classification.FILE_STEMS)
        else default_classification_policy(mode),
        load_audit_policy(path, mode)
        if has_policy_file(path, event_types.FILE_STEMS)
        else default_audit_policy(mode),
    )


def load_audit_types(path: Path | None, mode: Mode) -> AuditPolicy:
    """Only the audit event-type policy at `path` (what sizes the audit topic's retention),
    without reading the other kinds."""
    if path is not None and (
        (path.is_file() and path.stem in event_types.FILE_STEMS)
        or (path.is_dir() and has_policy_file(path, event_types.FILE_STEMS))
    ):
        return load_audit_policy(path, mode)
    return default_audit_policy(mode)
