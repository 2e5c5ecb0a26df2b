"""The one round trip of a check: a Lua script reading every hash a call touches.

KEYS: the meta record, the candidate breaker hashes, the watched SLO hashes, the dependency
hashes of the call's vendor and tool subjects, then the budget index sets of the call's
attributes (and `budget-index:*`); ARGV: how many breaker, SLO and dependency keys there are.
The script returns, as one JSON array, meta's `updated_at_ms`, each breaker's, SLO's and
dependency's fields (HMGET: the decision fields only, never the `record` JSON, so a reply stays
small), and for each member of the index sets' union its hash key and fields.

Budgets are filtered in Python (`verdict.budget_applies`), not in Lua: scopes may hold
fnmatch globs, and Lua patterns are not globs; the union of a call's index sets is small (the
budgets naming one of its team/user/... or none), and the filtered result is what the cache
keeps, so filtering runs once per fetch, not per check.

The index members are hash keys the script did not receive in KEYS: that is fine on a
standalone Redis (the projection's deployment), not on a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from workers.gateway.verdict import Call, FetchedState, Hash, budget_applies
from workers.gateway.wire import encode_command, script_sha
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
# The reply is one JSON string (`cjson`): each hash an object of its fields, or false when it
# does not exist, so Python reads the whole reply with one `orjson.loads` and builds nothing.
FETCH_SCRIPT = f"""
local function as_object(values, fields)
  if not values[1] then return false end
  local object = {{}}
  for i, name in ipairs(fields) do object[name] = values[i] or '' end
  return object
end
local k = 2
local function read(count, fields)
  local found = {{}}
  for i = k, k + count - 1 do
    found[#found + 1] = as_object(redis.call('HMGET', KEYS[i], unpack(fields)), fields)
  end
  k = k + count
  return found
end
local budget_fields = {_lua_list(BUDGET_FIELDS)}
local breakers = read(tonumber(ARGV[1]), {_lua_list(BREAKER_FIELDS)})
local slos = read(tonumber(ARGV[2]), {_lua_list(SLO_FIELDS)})
local dependencies = read(tonumber(ARGV[3]), {_lua_list(DEPENDENCY_FIELDS)})
local indexes, budgets = {{}}, {{}}
for i = k, #KEYS do indexes[#indexes + 1] = KEYS[i] end
if #indexes > 0 then
  for _, member in ipairs(redis.call('SUNION', unpack(indexes))) do
    local fields = as_object(redis.call('HMGET', member, unpack(budget_fields)), budget_fields)
    budgets[#budgets + 1] = {{member, fields}}
  end
end
local updated_at = redis.call('HGET', KEYS[1], 'updated_at_ms') or ''
return cjson.encode({{updated_at, breakers, slos, budgets, dependencies}})
"""
FETCH_SHA = script_sha(FETCH_SCRIPT)


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
    command: bytes
    """The `EVALSHA` of these keys and arguments, encoded once (`workers.gateway.wire`)."""

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
    command = encode_command("EVALSHA", FETCH_SHA, len(keys), *keys, *args)
    return FetchPlan(keys, args, call.breaker_keys, slo_names, dependency_names, command)


@dataclass(frozen=True, slots=True)
class Fetched:
    state: FetchedState
    read_keys: frozenset[str]
    """Every hash key the reply depends on: candidates that did not exist and budgets the
    call's scope did not match included (their change may change the verdict)."""
    budget_keys: frozenset[str]
    """The budget hash keys the index sets held."""


def parse_reply(layout: RedisLayout, call: Call, plan: FetchPlan, reply: bytes | str) -> Fetched:
    """The script's reply as state; ProjectionMissing when Redis holds no projection."""
    updated_at, breakers, slos, budgets, dependencies = orjson.loads(reply)
    if not updated_at:
        raise ProjectionMissing(layout.meta)
    budget_prefix = layout.state(Surface.BUDGET, "")
    attributes = call.attributes
    applying: dict[str, Hash] = {}
    budget_keys = []
    for hash_key, fields in budgets or ():  # cjson writes an empty array as {}
        budget_keys.append(hash_key)
        if fields and budget_applies(fields["scope"], attributes):
            applying[hash_key.removeprefix(budget_prefix)] = fields
    state = FetchedState(
        breakers=_existing(plan.breaker_names, breakers),
        budgets=applying,
        slos=_existing(plan.slo_names, slos),
        dependencies=_existing(plan.dependency_names, dependencies),
        updated_at_ms=int(updated_at),
    )
    read = {*plan.hash_keys, *budget_keys}
    return Fetched(state, frozenset(read), frozenset(budget_keys))


def _existing(names: Sequence[str], replies: Sequence[Hash | bool]) -> dict[str, Hash]:
    """The hashes that exist, by name (false in the reply: no such hash)."""
    return {
        name: fields
        for name, fields in zip(names, replies or (), strict=True)
        if isinstance(fields, dict)
    }
