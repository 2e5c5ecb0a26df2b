"""The `cardinality_limit` alert (issue 11): what an engine makes of its `CappedMap`'s alarm.

One identity per kind of state and map (`labels.state`: breakers | budgets | slos, and
`labels.scope` when the map holds one partition's share). It fires once when the cap first
binds (a key refused into the overflow state, or an idle key evicted) and resolves once no key
has been refused or evicted for `RESOLVE_AFTER_MS` of event time. It goes out through the
engine's `AlertBook`, like the engine's other alerts, and is audited as
`aud.state.cardinality_limit` (`schemas.audit_names.CARDINALITY_LIMIT`).
"""

from __future__ import annotations

from typing import Any

from schemas.alerts import CARDINALITY_LIMIT
from schemas.types import Severity
from workers.alert_book import AlertBook
from workers.decisions import AlertDecision, Decision
from workers.kernels.key_cap import Alarm, CappedMap, KeyLimit

OVERFLOW_LABEL = "~overflow"
"""The label value (vendor, tool, user, group_by field) shown for an overflow state."""


def decision_key(limit: KeyLimit) -> str:
    """The decision key of a map's cardinality alert: "~cardinality/breakers[/p3]"."""
    scope = f"/{limit.scope}" if limit.scope else ""
    return f"~cardinality/{limit.kind.value}{scope}"


def alarm_decisions(
    book: AlertBook, keys: CappedMap[Any], now_ms: int, event_id: str, *, overflow: str
) -> list[Decision]:
    """The alert the map's alarm calls for at event time `now_ms` (usually none).
    `overflow` says, for the summary, where refused keys' traffic goes."""
    alarm = keys.alarm(now_ms)
    if alarm is None:
        return []
    limit = keys.limit
    identity = {"state": limit.kind.value}
    if limit.scope:
        identity["scope"] = limit.scope
    slot = (decision_key(limit), CARDINALITY_LIMIT, "")
    where = f" ({limit.scope})" if limit.scope else ""
    if alarm is Alarm.FIRE:
        at_ms = keys.bound_ms if keys.bound_ms is not None else now_ms
        return [
            *book.fire(
                slot,
                identity,
                Severity.WARNING,
                f"{limit.kind.value}{where} reached the cap of {limit.max_keys} keys: {overflow}",
                at_ms,
                event_id,
                value=float(keys.admitted),
                threshold=float(limit.max_keys),
                extra={"max_keys": str(limit.max_keys)},
            )
        ]
    return [
        *book.resolve(
            slot,
            now_ms,
            event_id,
            summary=f"{limit.kind.value}{where}: no key refused or evicted for "
            f"{(now_ms - (keys.bound_ms or now_ms)) // 1000} s",
        )
    ]


def is_cardinality_alert(decision: Decision) -> bool:
    return isinstance(decision, AlertDecision) and decision.alert.kind == CARDINALITY_LIMIT
