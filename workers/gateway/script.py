"""The one round trip of a check: a Lua script reading every hash a call touches.

KEYS: the meta record, the candidate breaker hashes, the watched SLO hashes, the dependency
hashes of the call's vendor and tool subjects, then the budget index sets of the call's
attributes (and `budget-index:*`); ARGV: how many breaker, SLO and dependency keys there are.
The script returns meta's `updated_at_ms`, each breaker's, SLO's and dependency's fields
(HMGET: the decision fields only, never the `record` JSON, so a reply stays small), and for
each member of the index sets' union its hash key and fields.

Budgets are filtered in Python (`verdict.budget_applies`), not in Lua: scopes may hold
fnmatch globs, and Lua patterns are not globs; the union of a call's index sets is small (the
budgets naming one of its team/user/... or none), and the filtered result is what the cache
keeps, so filtering runs once per fetch, not per check.

The index members are hash keys the script did not receive in KEYS: that is fine on a
standalone Redis (the projection's deployment), not on a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.gateway.verdict import Call, FetchedState, Hash, budget_applies
from workers.projection.layout import RedisLayout, Surface

BREAKER_FIELDS = ("state", "retry_at", "reason", "fallback_action", "policy_id", "policy_version")
BUDGET_FIELDS = (
    "budget_id",
    "action",
    "decided_by",
    "remaining_usd",
    "rate_limit_reset_at",
    "requests_remaining",
    "tokens_remaining",
    "policy_version",
    "scope",
)
SLO_FIELDS = ("slo_id", "firing", "level", "policy_version")
DEPENDENCY_FIELDS = ("availability", "node", "reason", "cause", "policy_version")


def _lua_list(names: Sequence[str]) -> str:
    return "{" + ", ".join(f"'{name}'" for name in names) + "}"


# The field lists are written once, here, into the script's text: sent as ARGV they cost
# every check ~20 more arguments to encode and parse (measured: a third of a cold check).
FETCH_SCRIPT = f"""
local budget_fields = {_lua_list(BUDGET_FIELDS)}
local k = 2
local function read(count, fields)
  local found = {{}}
  for i = k, k + count - 1 do found[#found + 1] = redis.call('HMGET', KEYS[i], unpack(fields)) end
  k = k + count
  return found
end
local breakers = read(tonumber(ARGV[1]), {_lua_list(BREAKER_FIELDS)})
local slos = read(tonumber(ARGV[2]), {_lua_list(SLO_FIELDS)})
local dependencies = read(tonumber(ARGV[3]), {_lua_list(DEPENDENCY_FIELDS)})
local indexes, budgets = {{}}, {{}}
for i = k, #KEYS do indexes[#indexes + 1] = KEYS[i] end
if #indexes > 0 then
  for _, member in ipairs(redis.call('SUNION', unpack(indexes))) do
    budgets[#budgets + 1] = member
    budgets[#budgets + 1] = redis.call('HMGET', member, unpack(budget_fields))
  end
end
local updated_at = redis.call('HGET', KEYS[1], 'updated_at_ms') or ''
return {{updated_at, breakers, slos, budgets, dependencies}}
"""


class ProjectionMissing(Exception):
    """Redis answered but holds no projection (flushed or restarted; the projector rebuilds)."""


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What the script reads for one call, and the hash keys whose change invalidates it."""

    keys: tuple[str, ...]
    args: tuple[str | int, ...]
    breaker_names: tuple[str, ...]
    slo_names: tuple[str, ...]
    dependency_names: tuple[str, ...]

    @property
    def hash_keys(self) -> tuple[str, ...]:
        """The hashes the script reads by name (breakers, SLOs, dependencies), whether or not
        they exist: the budgets come from the index sets."""
        count = len(self.breaker_names) + len(self.slo_names) + len(self.dependency_names)
        return self.keys[1 : 1 + count]


def plan_fetch(layout: RedisLayout, call: Call, watched_slos: Sequence[str]) -> FetchPlan:
    """The script's KEYS and ARGV for `call`. Watched SLOs: for each SLO id, its burn-rate
    state keys grouped by vendor and tool, by vendor, or by tool (`slo:<id>/<labels>`)."""
    slo_names = tuple(
        dict.fromkeys(
            f"slo:{slo_id}/{labels}"
            for slo_id in watched_slos
            for labels in (f"{call.vendor}/{call.tool}", call.vendor, call.tool)
        )
    )
    attributes = call.attributes
    indexes = [layout.budget_index(a, v) for a, v in sorted(attributes.items())]
    dependency_names = call.dependency_subjects
    keys = (
        layout.meta,
        *(layout.state(Surface.BREAKER, name) for name in call.breaker_keys),
        *(layout.state(Surface.SLO, name) for name in slo_names),
        *(layout.state(Surface.DEPENDENCY, name) for name in dependency_names),
        *indexes,
        layout.budget_index(None),
    )
    args = (len(call.breaker_keys), len(slo_names), len(dependency_names))
    return FetchPlan(keys, args, call.breaker_keys, slo_names, dependency_names)


@dataclass(frozen=True, slots=True)
class Fetched:
    state: FetchedState
    read_keys: frozenset[str]
    """Every hash key the reply depends on: candidates that did not exist and budgets the
    call's scope did not match included (their change may change the verdict)."""
    budget_keys: frozenset[str]
    """The budget hash keys the index sets held."""


def parse_reply(layout: RedisLayout, call: Call, plan: FetchPlan, reply: Any) -> Fetched:
    """The script's reply as state; ProjectionMissing when Redis holds no projection."""
    updated_at, breakers, slos, budgets, dependencies = reply
    if not updated_at:
        raise ProjectionMissing(layout.meta)
    budget_prefix = layout.state(Surface.BUDGET, "")
    attributes = call.attributes
    applying: dict[str, Hash] = {}
    budget_keys = []
    for i in range(0, len(budgets), 2):
        hash_key = _text(budgets[i])
        budget_keys.append(hash_key)
        fields = _fields(BUDGET_FIELDS, budgets[i + 1])
        if fields is not None and budget_applies(fields["scope"], attributes):
            applying[hash_key.removeprefix(budget_prefix)] = fields
    state = FetchedState(
        breakers=_existing(BREAKER_FIELDS, plan.breaker_names, breakers),
        budgets=applying,
        slos=_existing(SLO_FIELDS, plan.slo_names, slos),
        dependencies=_existing(DEPENDENCY_FIELDS, plan.dependency_names, dependencies),
        updated_at_ms=int(_text(updated_at)),
    )
    read = {*plan.hash_keys, *budget_keys}
    return Fetched(state, frozenset(read), frozenset(budget_keys))


def _existing(names: Sequence[str], keys: Sequence[str], replies: Sequence[Any]) -> dict[str, Hash]:
    found = {}
    for key, values in zip(keys, replies, strict=True):
        fields = _fields(names, values)
        if fields is not None:
            found[key] = fields
    return found


def _fields(names: Sequence[str], values: Sequence[Any]) -> Mapping[str, str] | None:
    """An HMGET reply as fields; None for a hash that does not exist (no first field: every
    projected hash has its first decision field, maybe as "")."""
    if values[0] is None:
        return None
    return {name: _text(value) for name, value in zip(names, values, strict=True)}


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
