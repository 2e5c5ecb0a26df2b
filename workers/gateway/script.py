"""The one round trip of a check: a Lua script reading every hash a call touches.

KEYS: the meta record, the candidate breaker hashes, the watched SLO hashes, then the budget
index sets of the call's attributes (and `budget-index:*`). The script returns meta's
`updated_at_ms`, each breaker's and SLO's fields (HMGET: the decision fields only, never the
`record` JSON, so a reply stays small), and for each member of the index sets' union its
hash key and fields.

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


def _lua_list(names: Sequence[str]) -> str:
    return "{" + ", ".join(f"'{name}'" for name in names) + "}"


# The field lists are written once, here, into the script's text: sent as ARGV they cost
# every check ~20 more arguments to encode and parse (measured: a third of a cold check).
FETCH_SCRIPT = f"""
local nbreakers, nslos = tonumber(ARGV[1]), tonumber(ARGV[2])
local breaker_fields = {_lua_list(BREAKER_FIELDS)}
local budget_fields = {_lua_list(BUDGET_FIELDS)}
local slo_fields = {_lua_list(SLO_FIELDS)}
local breakers, slos, budgets = {{}}, {{}}, {{}}
for i = 2, 1 + nbreakers do
  breakers[#breakers + 1] = redis.call('HMGET', KEYS[i], unpack(breaker_fields))
end
for i = 2 + nbreakers, 1 + nbreakers + nslos do
  slos[#slos + 1] = redis.call('HMGET', KEYS[i], unpack(slo_fields))
end
local indexes = {{}}
for i = 2 + nbreakers + nslos, #KEYS do indexes[#indexes + 1] = KEYS[i] end
if #indexes > 0 then
  for _, member in ipairs(redis.call('SUNION', unpack(indexes))) do
    budgets[#budgets + 1] = member
    budgets[#budgets + 1] = redis.call('HMGET', member, unpack(budget_fields))
  end
end
return {{redis.call('HGET', KEYS[1], 'updated_at_ms') or '', breakers, slos, budgets}}
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
    keys = (
        layout.meta,
        *(layout.state(Surface.BREAKER, name) for name in call.breaker_keys),
        *(layout.state(Surface.SLO, name) for name in slo_names),
        *indexes,
        layout.budget_index(None),
    )
    args = (len(call.breaker_keys), len(slo_names))
    return FetchPlan(keys, args, call.breaker_keys, slo_names)


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
    updated_at, breakers, slos, budgets = reply
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
    read = {
        *plan.keys[1 : 1 + len(plan.breaker_names) + len(plan.slo_names)],
        *budget_keys,
    }
    state = FetchedState(
        breakers=_existing(BREAKER_FIELDS, plan.breaker_names, breakers),
        budgets=applying,
        slos=_existing(SLO_FIELDS, plan.slo_names, slos),
        updated_at_ms=int(_text(updated_at)),
    )
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
