"""May this call go out now? The gateway's decision as a pure function (no I/O, no clock).

`decide(call, state, now_ms)` reads the projected hashes a call touches (`FetchedState`, as
`workers.gateway.script` fetched them) and says allow, throttle or deny, with every reason:

* **breakers** (`breaker_open`): `open` and `forced_open` deny. An open breaker's
  ``retry_after_ms`` is ``retry_at - now`` (0 once passed): a breaker whose retry_at has passed
  still denies, because only the worker moves it to half_open (its clock is event time, and it
  admits a limited number of probe calls the gateway cannot count without a write). A
  `forced_open` breaker is an operator's: no retry time. `half_open` **allows**: the worker
  limits the probes and re-opens the breaker if they fail. closed / disabled / metrics_only
  allow.
* **budgets** that apply to the call: action `halt` denies (`budget_halt`), `throttle`
  throttles (`budget_throttle`), except a throttle the rate limit decided
  (``decided_by: rate_limit:*``), which the rate-limit rule below governs alone because it
  knows when it ends. A call whose `estimated_cost_usd` exceeds a budget's `remaining_usd`
  is throttled too (`budget_throttle`).
* **rate limit** (`rate_limit`): a budget with no requests or no tokens left and
  `rate_limit_reset_at` in the future throttles, retry after the reset.
* **data classes** (`data_class`): every breach of the data-class rules denies
  (`workers.kernels.data_rules`); the verdict passes encryption/restrictions/retention through,
  and a class that may not be cached turns a `use_cache` fallback into `return_error`.
* **SLO degradation** (`slo_degraded`): a watched burn-rate SLO firing for this vendor/tool is
  reported, informational by default (`slo_throttles=True` makes it throttle).
* **dependencies**: the cascade's verdict on the dependency-graph nodes guarding the call's
  vendor and tool (`dependency:vendor:<vendor>`, `dependency:tool:<tool>`; a subject no node
  guards has no hash and allows). `unavailable` denies (`dependency_unavailable`) and the
  message names the cause chain (the record's reason: which node is down, through which
  required dependencies); no retry time, as the cascade does not know when the breaker at the
  chain's end will half-open. `degraded` (the down node is on an optional path) is reported
  and allows (`dependency_degraded`). A dependency carries no fallback: the verdict's fallback
  stays the call's breakers' (`_fallback`), so a deny from a dependency alone gives the most
  specific breaker's fallback that names one, or none.
* **Redis unavailable** (`redis_unavailable`, see `unavailable`): allow under fail_open, deny
  under fail_closed.

The most restrictive reason decides (deny > throttle > allow); reasons are listed in a fixed
order (`REASON_ORDER`, then key, then message), whatever order Redis returned the hashes in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import orjson

from schemas.state import Availability
from schemas.types import epoch_ms
from workers.kernels.data_rules import DataClassVerdict
from workers.kernels.dependency_graph import GuardKind, Subject


class Decision(StrEnum):
    ALLOW = "allow"
    THROTTLE = "throttle"
    DENY = "deny"


_SEVERITY = {Decision.ALLOW: 0, Decision.THROTTLE: 1, Decision.DENY: 2}


def most_restrictive(decisions: Iterable[Decision]) -> Decision:
    return max(decisions, key=_SEVERITY.__getitem__, default=Decision.ALLOW)


class ReasonKind(StrEnum):
    """Declared in the order a verdict lists its reasons (`REASON_ORDER`): the kinds that can
    deny, then those that throttle, then the informational ones. The order only lists; the
    decision is `most_restrictive` of the reasons' own decisions."""

    REDIS_UNAVAILABLE = "redis_unavailable"
    DATA_CLASS = "data_class"
    BREAKER_OPEN = "breaker_open"
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    """After the breakers: a breaker is the call's own state, a dependency what the cascade
    derives from other breakers."""
    BUDGET_HALT = "budget_halt"
    RATE_LIMIT = "rate_limit"
    BUDGET_THROTTLE = "budget_throttle"
    SLO_DEGRADED = "slo_degraded"
    DEPENDENCY_DEGRADED = "dependency_degraded"
    """Last: it always allows, where `slo_degraded` may throttle (`slo_throttles`)."""


REASON_ORDER = {kind: rank for rank, kind in enumerate(ReasonKind)}


class Source(StrEnum):
    """Where the state a verdict read came from."""

    REDIS = "redis"
    CACHE = "cache"
    """The in-process cache, valid as far as the change notifications tell."""
    LAST_KNOWN = "last_known"
    """Redis failed; the last state fetched for this call."""
    NONE = "none"
    """Redis failed and nothing was known for this call."""


class FailureMode(StrEnum):
    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"


SCOPE_ATTRIBUTES = (
    "vendor",
    "model",
    "team",
    "project",
    "user",
    "api_key_id",
    "org",
    "environment",
)
"""The attribution fields budget scopes select on (workers.kernels.budget_config.SCOPE_FIELDS)."""


@dataclass(frozen=True, slots=True)
class Call:
    """What a gateway asks about: a vendor's tool, on behalf of a scope."""

    vendor: str
    tool: str
    scope: tuple[tuple[str, str], ...] = ()
    """(attribute, value) pairs of the attribution fields budget scopes select on
    (workers.kernels.budget_config.SCOPE_FIELDS), sorted, `vendor` apart."""

    @property
    def attributes(self) -> dict[str, str]:
        """Every attribute a budget scope may match, `vendor` included."""
        return {"vendor": self.vendor, **dict(self.scope)}

    @property
    def breaker_keys(self) -> tuple[str, ...]:
        """The breaker keys a policy could give this call, most specific first: the gateway
        loads no breaker policy, so it reads all three (`key_for`'s modes vendor/tool, vendor,
        tool) and every one that exists applies."""
        return tuple(dict.fromkeys((f"{self.vendor}/{self.tool}", self.vendor, self.tool)))

    @property
    def dependency_subjects(self) -> tuple[str, ...]:
        """The dependency-graph subjects guarding this call, the keys of the cascade's
        dependency-state records: its vendor's and its tool's."""
        return (
            str(Subject(GuardKind.VENDOR, self.vendor)),
            str(Subject(GuardKind.TOOL, self.tool)),
        )


Hash = Mapping[str, str]
"""A projected hash's fields (workers.projection.updates), "" for an absent value."""


@dataclass(frozen=True, slots=True)
class FetchedState:
    """The hashes one call touches, as read in one round trip."""

    breakers: Mapping[str, Hash] = field(default_factory=dict)
    """Breaker key -> hash, for the candidate keys that exist."""
    budgets: Mapping[str, Hash] = field(default_factory=dict)
    """Ledger key -> hash, for the budgets whose scope the call matches."""
    slos: Mapping[str, Hash] = field(default_factory=dict)
    """SLO state key -> hash, for the watched SLOs' keys that exist."""
    dependencies: Mapping[str, Hash] = field(default_factory=dict)
    """Dependency subject (`vendor:openai`, `tool:chat`) -> hash, for the call's subjects that
    a dependency-graph node guards."""
    updated_at_ms: int | None = None
    """When the projector last wrote (meta `updated_at_ms`)."""


@dataclass(frozen=True, slots=True)
class Reason:
    kind: ReasonKind
    key: str
    """The breaker, budget or SLO key, the dependency subject, the data class, or the Redis
    address."""
    message: str
    decision: Decision
    """What this reason alone decides."""
    retry_after_ms: int | None = None
    policy_version: str | None = None

    @property
    def order(self) -> tuple[int, str, str]:
        return REASON_ORDER[self.kind], self.key, self.message


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reasons: tuple[Reason, ...] = ()
    fallback_action: str | None = None
    """The breaker's fallback (use_cache, use_alternate_vendor...), `return_error` when a data
    class forbids caching and the breaker says use_cache."""
    policy_versions: tuple[str, ...] = ()
    """The versions of the policies whose state was read, sorted."""
    encryption_required: bool = False
    restrictions: tuple[str, ...] = ()
    retention_days: int | None = None
    stale_ms: int | None = None
    """now - the projector's last write as read (None: unknown). For a cached read it is an
    upper bound: nothing the call reads has changed since, as far as notifications tell."""
    source: Source = Source.REDIS

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    @property
    def retry_after_ms(self) -> int | None:
        """The longest wait any reason at the verdict's decision names (None: none names one)."""
        waits = [r.retry_after_ms for r in self.reasons if r.decision is self.decision]
        return max((w for w in waits if w is not None), default=None)


def decide(
    call: Call,
    state: FetchedState,
    now_ms: int,
    *,
    data: DataClassVerdict | None = None,
    slo_throttles: bool = False,
    estimated_cost_usd: Decimal | None = None,
    source: Source = Source.REDIS,
) -> Verdict:
    """The verdict for `call` at `now_ms` from `state` (and the data-class verdict, if checked)."""
    reasons = [
        *_breaker_reasons(state.breakers, now_ms),
        *_budget_reasons(state.budgets, now_ms),
        *_cost_reasons(state.budgets, estimated_cost_usd),
        *_slo_reasons(state.slos, slo_throttles),
        *_dependency_reasons(state.dependencies),
        *_data_reasons(data),
    ]
    return _verdict(call, state, now_ms, reasons, data, source)


def unavailable(
    call: Call,
    last_known: FetchedState | None,
    now_ms: int,
    mode: FailureMode,
    error: str,
    *,
    data: DataClassVerdict | None = None,
    slo_throttles: bool = False,
    estimated_cost_usd: Decimal | None = None,
) -> Verdict:
    """The verdict when Redis cannot answer: the last known state's reasons (if any) plus
    `redis_unavailable`, which allows under fail_open and denies under fail_closed."""
    outage = Reason(
        ReasonKind.REDIS_UNAVAILABLE,
        "redis",
        f"{error} ({mode})",
        Decision.ALLOW if mode is FailureMode.FAIL_OPEN else Decision.DENY,
    )
    source = Source.NONE if last_known is None else Source.LAST_KNOWN
    known = decide(
        call,
        last_known or FetchedState(),
        now_ms,
        data=data,
        slo_throttles=slo_throttles,
        estimated_cost_usd=estimated_cost_usd,
    )
    reasons = sorted((*known.reasons, outage), key=lambda r: r.order)
    return replace(
        known,
        decision=most_restrictive(r.decision for r in reasons),
        reasons=tuple(reasons),
        source=source,
    )


def budget_applies(scope_json: str, attributes: Mapping[str, str]) -> bool:
    """Whether a budget whose `scope` field is `scope_json` counts the call's spend: every
    scope entry names an attribute the call has, with a value its glob matches (case-sensitive,
    as BudgetConfig.matches)."""
    try:
        scope = orjson.loads(scope_json or "{}")
    except orjson.JSONDecodeError:
        return False
    if not isinstance(scope, dict):
        return False
    for attribute, pattern in scope.items():
        value = attributes.get(attribute)
        if value is None or not fnmatch.fnmatchcase(value, str(pattern)):
            return False
    return True


def _verdict(
    call: Call,
    state: FetchedState,
    now_ms: int,
    reasons: list[Reason],
    data: DataClassVerdict | None,
    source: Source,
) -> Verdict:
    reasons.sort(key=lambda r: r.order)
    fallback = _fallback(call, state.breakers, reasons)
    if data is not None:
        fallback = data.fallback(fallback)
    hashes = [
        *state.breakers.values(),
        *state.budgets.values(),
        *state.slos.values(),
        *state.dependencies.values(),
    ]
    return Verdict(
        decision=most_restrictive(r.decision for r in reasons),
        reasons=tuple(reasons),
        fallback_action=fallback,
        policy_versions=tuple(sorted({h["policy_version"] for h in hashes} - {""})),
        encryption_required=data.encryption_required if data else False,
        restrictions=data.restrictions if data else (),
        retention_days=data.retention_days if data else None,
        stale_ms=None if state.updated_at_ms is None else max(0, now_ms - state.updated_at_ms),
        source=source,
    )


def _fallback(call: Call, breakers: Mapping[str, Hash], reasons: list[Reason]) -> str | None:
    """The fallback of the most specific denying breaker, else of the most specific breaker
    that names one (a gateway also needs it when the vendor fails on an allowed call). Budgets
    and dependencies carry no fallback of their own: a call only they deny gets this one too
    (None when no breaker of the call names one)."""
    denying = {r.key for r in reasons if r.kind is ReasonKind.BREAKER_OPEN}
    named = [k for k in call.breaker_keys if breakers.get(k, {}).get("fallback_action")]
    chosen = next((k for k in named if k in denying), named[0] if named else None)
    return None if chosen is None else breakers[chosen]["fallback_action"]


def _breaker_reasons(breakers: Mapping[str, Hash], now_ms: int) -> list[Reason]:
    reasons = []
    for key, fields in breakers.items():
        state = fields.get("state", "")
        if state not in ("open", "forced_open"):
            continue  # half_open allows: the worker limits the probes (module docstring)
        retry_at = _time_ms(fields.get("retry_at", ""))
        wait = None if state == "forced_open" or retry_at is None else max(0, retry_at - now_ms)
        detail = fields.get("reason") or "no reason recorded"
        reasons.append(
            Reason(
                ReasonKind.BREAKER_OPEN,
                key,
                f"breaker {key} is {state}: {detail}",
                Decision.DENY,
                wait,
                fields.get("policy_version") or None,
            )
        )
    return reasons


def _budget_reasons(budgets: Mapping[str, Hash], now_ms: int) -> list[Reason]:
    reasons = []
    for key, fields in budgets.items():
        version = fields.get("policy_version") or None
        action, decided_by = fields.get("action", ""), fields.get("decided_by", "")
        if action == "halt":
            message = f"budget {key} is halted ({decided_by or 'no rule recorded'})"
            reasons.append(
                Reason(ReasonKind.BUDGET_HALT, key, message, Decision.DENY, None, version)
            )
        elif action == "throttle" and not decided_by.startswith("rate_limit"):
            message = f"budget {key} is throttled ({decided_by or 'no rule recorded'})"
            reasons.append(
                Reason(ReasonKind.BUDGET_THROTTLE, key, message, Decision.THROTTLE, None, version)
            )
        reasons.extend(_rate_limit_reason(key, fields, now_ms))
    return reasons


def _rate_limit_reason(key: str, fields: Hash, now_ms: int) -> list[Reason]:
    reset_ms = _time_ms(fields.get("rate_limit_reset_at", ""))
    exhausted = [n for n in ("requests", "tokens") if fields.get(f"{n}_remaining") == "0"]
    if not exhausted or reset_ms is None or reset_ms <= now_ms:
        return []
    message = f"budget {key}: no {' and no '.join(exhausted)} left until the window moves on"
    return [
        Reason(
            ReasonKind.RATE_LIMIT,
            key,
            message,
            Decision.THROTTLE,
            reset_ms - now_ms,
            fields.get("policy_version") or None,
        )
    ]


def _cost_reasons(budgets: Mapping[str, Hash], estimated_cost_usd: Decimal | None) -> list[Reason]:
    """`budget_throttle` for each budget whose remaining money the call's estimate exceeds."""
    reasons: list[Reason] = []
    if estimated_cost_usd is None:
        return reasons
    for key, fields in budgets.items():
        remaining = _decimal(fields.get("remaining_usd", ""))
        if remaining is not None and estimated_cost_usd > remaining:
            message = f"budget {key}: estimated cost {estimated_cost_usd} > remaining {remaining}"
            version = fields.get("policy_version") or None
            reasons.append(
                Reason(ReasonKind.BUDGET_THROTTLE, key, message, Decision.THROTTLE, None, version)
            )
    return reasons


def _slo_reasons(slos: Mapping[str, Hash], throttles: bool) -> list[Reason]:
    reasons = []
    for key, fields in slos.items():
        firing = _firing(fields.get("firing", ""))
        if firing:
            reasons.append(
                Reason(
                    ReasonKind.SLO_DEGRADED,
                    key,
                    f"SLO {fields.get('slo_id') or key} burning: {', '.join(firing)}",
                    Decision.THROTTLE if throttles else Decision.ALLOW,
                    None,
                    fields.get("policy_version") or None,
                )
            )
    return reasons


def _dependency_reasons(dependencies: Mapping[str, Hash]) -> list[Reason]:
    """`unavailable` denies, `degraded` informs; `available` (or a value this gateway does not
    know) says nothing, as a breaker state it does not know says nothing."""
    reasons = []
    for subject, fields in dependencies.items():
        availability = fields.get("availability", "")
        if availability == Availability.UNAVAILABLE:
            kind, decision = ReasonKind.DEPENDENCY_UNAVAILABLE, Decision.DENY
        elif availability == Availability.DEGRADED:
            kind, decision = ReasonKind.DEPENDENCY_DEGRADED, Decision.ALLOW
        else:
            continue
        node = fields.get("node") or "no node recorded"
        reasons.append(
            Reason(
                kind,
                subject,
                f"dependency {subject} ({node}) is {availability}: {_cause_chain(fields)}",
                decision,
                None,
                fields.get("policy_version") or None,
            )
        )
    return reasons


def _cause_chain(fields: Hash) -> str:
    """The record's reason (it names the down node and the path to it), else the bare `cause`
    path, so a deny always says why when the record does."""
    if fields.get("reason"):
        return fields["reason"]
    try:
        cause = orjson.loads(fields.get("cause") or "[]")
    except orjson.JSONDecodeError:
        cause = []
    if isinstance(cause, list) and cause:
        return " -> ".join(str(node) for node in cause)
    return "no reason recorded"


def _data_reasons(data: DataClassVerdict | None) -> list[Reason]:
    if data is None:
        return []
    return [
        Reason(ReasonKind.DATA_CLASS, breach.data_class, breach.reason, Decision.DENY)
        for breach in data.breaches
    ]


def _firing(text: str) -> list[str]:
    try:
        firing = orjson.loads(text) if text else []
    except orjson.JSONDecodeError:
        return [text]  # unreadable but present: say something is firing rather than nothing
    return [str(item) for item in firing] if isinstance(firing, list) else [str(firing)]


def _time_ms(text: str) -> int | None:
    if not text:
        return None
    try:
        return epoch_ms(datetime.fromisoformat(text))
    except (ValueError, TypeError):  # TypeError: a time without its offset
        return None


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None
