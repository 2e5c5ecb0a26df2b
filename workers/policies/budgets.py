"""Budget policy (DESIGN §5, §6): the budgets an event counts against.

`load_budget_policy(path, mode)` reads guardstream's `configs/budgets.yaml` shape or either
seed shape (alpha-solver's budget_controls.yaml, RESONTINEX's energy_governance.yaml), see
`budget_shapes`. The result is immutable and carries the PolicyDocument that `policy apply`
publishes; a worker rebuilds the same policy from it with `from_document`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.budget_config import BudgetConfig, Threshold, ThresholdAction
from workers.policies.budget_models import AlphaSpec, GuardSpec, ResSpec
from workers.policies.budget_resontinex import parse_resontinex_energy_governance
from workers.policies.budget_shapes import (
    Shape,
    detect,
    parse_alpha_solver_budget_controls,
    parse_guardstream_budgets,
)
from workers.policies.files import (
    LoadedPolicy,
    Problems,
    builtin_policy_document,
    load_policy_document,
    plain_json,
    require_kind,
)
from workers.policies.parsing import SpecParser, parse_by_shape, parse_policy, validated_as
from workers.settings import Mode

# Looked for in a policy directory, in this order (then the seeds' names).
FILE_STEMS = ("budgets", "budget_controls", "energy_governance")

_NOTIFY, _ESCALATE = ThresholdAction.NOTIFY, ThresholdAction.ESCALATE


def _ladder(*steps: tuple[int, ThresholdAction]) -> tuple[Threshold, ...]:
    return tuple(Threshold.of(Decimal(pct), action) for pct, action in steps)


# Defaults per runtime mode for what a policy file may omit. Precedence (DESIGN §5):
# environment > policy file (budget entry, then `defaults:`) > these > the kernel's own.
#
#               development          staging               production
# grace_ms      60 000 (1 min)       900 000 (15 min)      3 600 000 (1 h)
# tz            UTC                  UTC                   UTC
# week_start    0 (Monday)           0 (Monday)            0 (Monday)
# thresholds    50 notify,           50, 80 notify,        50, 80 notify,
#  (if none)    100 escalate         95, 100 escalate      95, 100 escalate
#
# Grace: a simulator run should see its periods close within a minute; in production cost
# events from billing exports arrive up to an hour late and must still land in their period.
# Thresholds (only for a budget that lists none; `thresholds: []` means none): production and
# staging use the alpha-solver seed's 50/80/95/100 ladder so finance hears early; development
# alerts at half and at the limit, enough to see the pipeline work without a flood. None of
# them halts or throttles: a default must be valid on a soft budget, and a hard budget halts at
# limit x burst_allowance anyway. UTC and Monday (ISO 8601) do not depend on the mode; they are
# in the table so that every default lives in one place.
MODE_DEFAULTS: Mapping[Mode, Mapping[str, Any]] = MappingProxyType(
    {
        Mode.DEVELOPMENT: MappingProxyType(
            {
                "grace_ms": 60_000,
                "tz": "UTC",
                "week_start": 0,
                "thresholds": _ladder((50, _NOTIFY), (100, _ESCALATE)),
            }
        ),
        Mode.STAGING: MappingProxyType(
            {
                "grace_ms": 900_000,
                "tz": "UTC",
                "week_start": 0,
                "thresholds": _ladder(
                    (50, _NOTIFY), (80, _NOTIFY), (95, _ESCALATE), (100, _ESCALATE)
                ),
            }
        ),
        Mode.PRODUCTION: MappingProxyType(
            {
                "grace_ms": 3_600_000,
                "tz": "UTC",
                "week_start": 0,
                "thresholds": _ladder(
                    (50, _NOTIFY), (80, _NOTIFY), (95, _ESCALATE), (100, _ESCALATE)
                ),
            }
        ),
    }
)

# Distinct combinations of scope-field values remembered by `matching`. Only the fields some
# budget selects on form the key, so with user-level budgets this is the number of active
# users kept hot; the bound keeps a flood of made-up values from growing memory.
MATCH_CACHE_SIZE = 65_536

ScopeKey = tuple[str | None, ...]


@dataclass(frozen=True, eq=False)
class BudgetPolicy(LoadedPolicy):
    """A validated budget policy; `matching` is on the hot path (one call per event)."""

    budgets: Mapping[str, BudgetConfig]
    _keys: tuple[str, ...] = field(init=False, repr=False)
    _match_key: Callable[[ScopeKey], tuple[BudgetConfig, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = sorted({name for b in self.budgets.values() for name in b.scope})
        object.__setattr__(self, "_keys", tuple(keys))
        # A bound lru_cache per policy: a new policy version starts with an empty cache.
        object.__setattr__(
            self, "_match_key", functools.lru_cache(maxsize=MATCH_CACHE_SIZE)(self._match)
        )

    def _match(self, key: ScopeKey) -> tuple[BudgetConfig, ...]:
        fields = dict(zip(self._keys, key, strict=True))
        return tuple(b for b in self.budgets.values() if b.matches(fields))

    def matching(self, fields: Mapping[str, str | None]) -> tuple[BudgetConfig, ...]:
        """Every budget an event with these attribution fields counts against, in the
        policy's order. Cached by the values of the fields that some scope selects on."""
        return self._match_key(tuple([fields.get(name) for name in self._keys]))

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> BudgetPolicy:
        """The policy a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.BUDGETS)
        return _from_spec(doc.spec, mode, doc)


def load_budget_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> BudgetPolicy:
    """Read, validate and resolve a budget policy file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.BUDGETS, normalize=plain_json)
    return _from_spec(spec, mode, doc)


def default_budget_policy(mode: Mode = Mode.DEVELOPMENT) -> BudgetPolicy:
    """No policy directory given: no budgets (nothing is limited until someone says so)."""
    spec, doc = builtin_policy_document(PolicyKind.BUDGETS, {"budgets": {}})
    return _from_spec(spec, mode, doc)


PARSERS: Mapping[Shape, SpecParser[dict[str, BudgetConfig | None]]] = {
    Shape.GUARDSTREAM: validated_as(GuardSpec, parse_guardstream_budgets),
    Shape.ALPHA_SOLVER: validated_as(AlphaSpec, parse_alpha_solver_budget_controls),
    Shape.RESONTINEX: validated_as(ResSpec, parse_resontinex_energy_governance),
}


def parse(
    spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems
) -> dict[str, BudgetConfig] | None:
    """The budgets of `spec` in whichever shape it has; None once a problem is recorded."""
    built = parse_by_shape(spec, base, problems, detect(spec), PARSERS)
    if built is None:
        return None
    return {bid: config for bid, config in built.items() if config is not None}


def _from_spec(spec: Mapping[str, Any], mode: Mode, doc: PolicyDocument) -> BudgetPolicy:
    budgets, loaded = parse_policy(doc, spec, MODE_DEFAULTS[mode], parse)
    return BudgetPolicy(**loaded, budgets=MappingProxyType(budgets))
