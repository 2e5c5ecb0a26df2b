"""SLO policy (DESIGN §5, §6): burn-rate SLOs, window objectives, SLA contracts and
degradation strategies.

`load_slo_policy(path, mode)` reads guardstream's `configs/slos.yaml` shape, RESONTINEX's
slo.yaml, alpha-solver's sla_contracts.yaml or OpenSLO v1 `kind: SLO` documents (one or
several in one YAML file), see `slo_shapes`. The result is immutable and carries the
PolicyDocument that `policy apply` publishes; a worker rebuilds the same policy from it with
`from_document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.slo_config import DAY_MS, DEFAULT_MIN_EVENTS, SloConfig
from workers.kernels.slo_targets_config import DegradationStrategy, SlaContract, WindowObjective
from workers.policies.files import (
    Problems,
    builtin_policy_document,
    find_policy_file,
    load_policy_document,
    plain_json,
    policy_document_of,
    read_policy_documents,
    require_kind,
)
from workers.policies.parsing import SpecParser, parse_by_shape, parse_policy, validated_as
from workers.policies.slo_models import AlphaSpec, GuardSpec, ResSpec
from workers.policies.slo_openslo import parse_openslo_documents
from workers.policies.slo_seeds import parse_alpha_solver_sla_contracts, parse_resontinex_slo
from workers.policies.slo_shapes import (
    OPENSLO_DOCUMENTS,
    Built,
    Shape,
    detect,
    parse_guardstream_slos,
)
from workers.settings import Mode

# Looked for in a policy directory, in this order (then the seeds' names).
FILE_STEMS = ("slos", "slo", "sla_contracts")

# Defaults per runtime mode for what a policy file may omit. Precedence (DESIGN §5):
# environment > policy file (SLO entry, then `defaults:`) > these > the kernel's own.
#
#               development          staging               production
# min_events    5                    20                    20
# period_ms     30 d (rolling)       30 d (rolling)        30 d (rolling)
# tz            UTC                  UTC                   UTC
#
# min_events: valid events both windows of a burn-rate tier (and a window objective's window)
# need before they may alert. A simulator run in development should see tiers fire after a
# handful of calls; with real traffic 20 keeps one failure among ten calls (a 100x burn for
# 99.9 %) from paging (the kernel's DEFAULT_MIN_EVENTS). The 30-day rolling period is the
# SRE Workbook's, and UTC is where calendar periods and SLA months start unless a file names
# a zone; neither depends on the mode, they are here so that every default lives in one place.
MODE_DEFAULTS: Mapping[Mode, Mapping[str, Any]] = MappingProxyType(
    {
        Mode.DEVELOPMENT: MappingProxyType(
            {"min_events": 5, "period_ms": 30 * DAY_MS, "tz": "UTC"}
        ),
        Mode.STAGING: MappingProxyType(
            {"min_events": DEFAULT_MIN_EVENTS, "period_ms": 30 * DAY_MS, "tz": "UTC"}
        ),
        Mode.PRODUCTION: MappingProxyType(
            {"min_events": DEFAULT_MIN_EVENTS, "period_ms": 30 * DAY_MS, "tz": "UTC"}
        ),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SloPolicy:
    """A validated SLO policy, in the file's order."""

    slos: tuple[SloConfig, ...]
    objectives: tuple[WindowObjective, ...]
    contracts: tuple[SlaContract, ...]
    strategies: tuple[DegradationStrategy, ...]
    version: str
    """The document's version: the content hash stamped on every decision."""
    document: PolicyDocument
    unsupported: tuple[str, ...] = ()
    """`<path>: <why>` for each entry the file states that guardstream cannot measure from its
    input events (loaded and reported, never silently dropped)."""
    notes: tuple[str, ...] = ()
    """What the loader accepted but does not evaluate, or read in a particular way."""
    name: str = ""
    source: str = ""

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> SloPolicy:
        """The policy a published document describes (same parser as the file)."""
        return from_document(doc, mode)


def load_slo_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> SloPolicy:
    """Read, validate and resolve an SLO policy file (or the one in directory `path`)."""
    file = find_policy_file(path, FILE_STEMS)
    documents = read_policy_documents(file)
    if len(documents) > 1:
        # Several OpenSLO documents in one file: one spec, so one version and one publish.
        spec, doc = policy_document_of(
            file, {OPENSLO_DOCUMENTS: documents}, PolicyKind.SLOS, normalize=plain_json
        )
    else:
        spec, doc = load_policy_document(file, FILE_STEMS, PolicyKind.SLOS, normalize=plain_json)
    return _from_spec(spec, mode, doc)


def default_slo_policy(mode: Mode = Mode.DEVELOPMENT) -> SloPolicy:
    """No SLO file given: no SLOs (nothing is measured until someone says what matters)."""
    spec, doc = builtin_policy_document(PolicyKind.SLOS, {"slos": {}})
    return _from_spec(spec, mode, doc)


def from_document(doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> SloPolicy:
    """The policy a published document describes (same parser as the file)."""
    require_kind(doc, PolicyKind.SLOS)
    return _from_spec(doc.spec, mode, doc)


PARSERS: Mapping[Shape, SpecParser[Built]] = {
    Shape.GUARDSTREAM: validated_as(GuardSpec, parse_guardstream_slos),
    Shape.RESONTINEX: validated_as(ResSpec, parse_resontinex_slo),
    Shape.ALPHA_SOLVER: validated_as(AlphaSpec, parse_alpha_solver_sla_contracts),
    Shape.OPENSLO: parse_openslo_documents,
}


def parse(spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems) -> Built | None:
    """Everything `spec` configures, in whichever shape it has; None once a problem is
    recorded."""
    return parse_by_shape(spec, base, problems, detect(spec), PARSERS)


def _from_spec(spec: Mapping[str, Any], mode: Mode, doc: PolicyDocument) -> SloPolicy:
    built, loaded = parse_policy(doc, spec, MODE_DEFAULTS[mode], parse)
    return SloPolicy(
        **loaded,
        slos=tuple(built.slos),
        objectives=tuple(built.objectives),
        contracts=tuple(built.contracts),
        strategies=tuple(built.strategies),
        version=doc.version,
        unsupported=tuple(built.unsupported),
    )
