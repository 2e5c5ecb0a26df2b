"""State records -> Redis hash updates (pure: no I/O, no clock).

A state topic's record becomes one `Update` of one hash: the record itself (`record`, JSON)
and the fields a gateway decides on, flat, so a Lua script or `HMGET` can read them without
decoding JSON. Every update carries where it came from (`source` = topic:partition, `offset`)
and a `rank`; the store applies it only if it is newer than what the hash holds (`is_newer`),
so replays, retries and two projectors in parallel never move a hash backwards.

Budgets: `budget-state` is keyed `<ledger key>@<period>` (compaction keeps each period's final
record), but a gateway asks about the ledger now, so the hash is the ledger's and holds the
newest period: `rank` is the period's start, and within a period (one topic key, one
partition) the newest offset wins. Breaker, SLO and dependency records rank 0: one topic key
per hash (a dependency node's hash is named by its subject, `dependency:tool:t001`, the topic
key, which is what a gateway looks up from a call's vendor and tool).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.types import epoch_ms
from workers.projection.layout import RedisLayout, Surface

_BREAKER_FIELDS = (
    "state",
    "since",
    "retry_at",
    "reason",
    "fallback_action",
    "policy_id",
    "policy_version",
    "updated_at",
)
_BUDGET_FIELDS = (
    "budget_id",
    "action",
    "decided_by",
    "utilization",
    "spent_usd",
    "limit_usd",
    "remaining_usd",
    "period_start",
    "period_end",
    "rate_limit_reset_at",
    "requests_remaining",
    "tokens_remaining",
    "policy_version",
    "updated_at",
)
_SLO_FIELDS = ("kind", "slo_id", "level", "firing", "error_budget_remaining", "policy_version")
_DEPENDENCY_FIELDS = (
    "node",
    "subject",
    "availability",
    "reason",
    "cause",
    "criticality",
    "policy_version",
    "updated_at",
)
_FIELDS: Mapping[Surface, tuple[str, ...]] = {
    Surface.BREAKER: _BREAKER_FIELDS,
    Surface.BUDGET: _BUDGET_FIELDS,
    Surface.SLO: _SLO_FIELDS,
    Surface.DEPENDENCY: _DEPENDENCY_FIELDS,
}


@dataclass(frozen=True, slots=True)
class Update:
    """One hash's new content, or its deletion (`fields` None: a tombstone)."""

    hash_key: str
    topic_key: str
    """The state topic's record key; a tombstone deletes only a hash that holds it."""
    source: str
    offset: int
    rank: int
    fields: Mapping[str, str] | None
    indexes: tuple[str, ...] = ()
    """Sets the hash's key joins (budgets: one per scope attribute)."""


_GLOB_CHARACTERS = "*?["


class UnreadableState(ValueError):
    """A state record that is not the JSON object its topic holds."""


def update_of(
    layout: RedisLayout,
    surface: Surface,
    source: str,
    offset: int,
    key: bytes,
    value: bytes | None,
) -> Update:
    """The update one state record makes; UnreadableState if it cannot be read."""
    try:
        topic_key = key.decode()
    except UnicodeDecodeError as exc:
        raise UnreadableState(f"key is not UTF-8: {exc}") from exc
    hash_key = layout.state(surface, _hash_name(surface, topic_key))
    if value is None:
        return Update(hash_key, topic_key, source, offset, 0, None)
    record = _object(value)
    fields = {name: _text(record.get(name)) for name in _FIELDS[surface]}
    fields["record"] = value.decode()
    if surface is not Surface.BUDGET:
        return Update(hash_key, topic_key, source, offset, 0, fields)
    scope = record.get("scope") or {}
    if not isinstance(scope, dict):
        raise UnreadableState("budget scope is not an object")
    fields["scope"] = orjson.dumps(scope, option=orjson.OPT_SORT_KEYS).decode()
    rank = _time_ms(record.get("period_start"))
    indexes = _budget_indexes(layout, scope)
    return Update(hash_key, topic_key, source, offset, rank, fields, indexes)


def _budget_indexes(layout: RedisLayout, scope: Mapping[str, Any]) -> tuple[str, ...]:
    """The index sets a budget joins: one per exact scope value (a call must match them all,
    so any one finds it). Glob values (`vendor: "open*"`, matched with fnmatch) cannot be
    looked up by a call's value; a budget with nothing but globs (or an empty scope) joins
    `*`, which every call reads, and the gateway matches the globs."""
    exact = [
        layout.budget_index(str(attribute), str(value))
        for attribute, value in sorted(scope.items())
        if not any(char in str(value) for char in _GLOB_CHARACTERS)
    ]
    return tuple(exact) or (layout.budget_index(None),)


def is_newer(update: Update, held: Update | None) -> bool:
    """Whether `update` may replace what a hash holds (the rule the Lua script applies)."""
    if held is None:
        return update.fields is not None
    if update.fields is None:  # a tombstone removes its own key's record only
        return held.topic_key == update.topic_key and (
            update.source != held.source or update.offset > held.offset
        )
    if update.rank != held.rank:
        return update.rank > held.rank
    return update.source != held.source or update.offset > held.offset


def coalesced(updates: Iterable[Update]) -> list[Update]:
    """Each hash's newest update of a batch (in a batch's order: offsets grow per partition),
    so a key that changed a hundred times in one batch costs Redis one write."""
    newest: dict[str, Update] = {}
    for update in updates:
        if is_newer(update, newest.get(update.hash_key)) or update.hash_key not in newest:
            newest[update.hash_key] = update
    return list(newest.values())


def _hash_name(surface: Surface, topic_key: str) -> str:
    if surface is Surface.BUDGET:
        return topic_key.rsplit("@", 1)[0]
    return topic_key


def _object(value: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UnreadableState(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise UnreadableState("not a JSON object")
    return record


def _text(value: Any) -> str:
    """A field as Redis holds it: strings as they are, other values as JSON, absent as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _time_ms(value: Any) -> int:
    if not isinstance(value, str):
        raise UnreadableState(f"budget period time {value!r} is not a time")
    try:
        return epoch_ms(datetime.fromisoformat(value))
    except (ValueError, TypeError) as exc:  # TypeError: a time without its offset
        raise UnreadableState(f"budget period time: {exc}") from exc
