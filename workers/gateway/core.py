"""What the sync and async clients share: settings, the call signature, the cache and the last
known state behind one lock, and the verdicts (no Redis I/O here; the clients do that)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workers.gateway.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_MS, StateCache
from workers.gateway.script import Fetched, FetchPlan, parse_reply, plan_fetch
from workers.gateway.verdict import (
    Call,
    FailureMode,
    FetchedState,
    Source,
    Verdict,
    decide,
    unavailable,
)
from workers.kernels.data_rules import (
    ClassHandling,
    DataClassVerdict,
    VendorGroups,
    data_class_verdict,
)
from workers.policies.policy_set import PolicySet
from workers.projection.layout import RedisLayout, Surface

DEFAULT_SOCKET_TIMEOUT_S = 0.05
DEFAULT_RETRY_INTERVAL_MS = 200
"""After a failed round trip, checks answer from the failure mode without trying Redis for this
long: an outage must not cost every request a connect attempt."""
_MAX_DATA_VERDICTS = 1024
_MAX_PLANS = 10_000
"""Key plans kept per call signature (a plan is a function of the call and the settings)."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    topic_prefix: str = "guardstream."
    failure_mode: FailureMode = FailureMode.FAIL_OPEN
    handling: Mapping[str, ClassHandling] | None = None
    """Class id -> handling (ClassificationPolicy.data_handling); with `registry`, declared
    data classes are checked. Without them, data_classes are not checked (nothing to check by)."""
    registry: VendorGroups | None = None
    watched_slos: Sequence[str] = ()
    """Burn-rate SLO ids whose per vendor/tool state is read (the gateway cannot list SLOs)."""
    slo_throttles: bool = False
    cache_entries: int = DEFAULT_MAX_ENTRIES
    """0 disables the cache (every check is a round trip)."""
    cache_ttl_ms: int = DEFAULT_TTL_MS
    retry_interval_ms: int = DEFAULT_RETRY_INTERVAL_MS
    clock: Callable[[], int] = field(default=wall_clock_ms)

    @classmethod
    def from_policies(cls, policies: PolicySet, **options: Any) -> GatewaySettings:
        """Settings that check declared data classes as `policies` say: the classification
        policy's per-class handling and the vendor registry (`vendors.yaml`)."""
        return cls(
            handling=policies.classification.data_handling,
            registry=policies.vendors.groups,
            **options,
        )


class GatewayCore:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.layout = RedisLayout.for_topic_prefix(settings.topic_prefix)
        self.cache = StateCache(
            self.layout.state(Surface.BUDGET, ""),
            max_entries=settings.cache_entries,
            ttl_ms=settings.cache_ttl_ms,
        )
        self.lock = threading.Lock()
        self._last_known: OrderedDict[Call, FetchedState] = OrderedDict()
        self._data_verdicts: dict[tuple[str, tuple[str, ...]], DataClassVerdict] = {}
        self._plans: dict[Call, FetchPlan] = {}
        self._down_until_ms = 0
        self.round_trips = 0

    @property
    def caching(self) -> bool:
        return self.settings.cache_entries > 0

    def plan(self, call: Call) -> FetchPlan:
        """The script's keys for `call`, built once per call signature (~11 µs of a cold
        check otherwise). Cleared when full rather than kept in LRU order: a gateway's call
        signatures are few, and a dict lookup is all a hit may cost."""
        found = self._plans.get(call)
        if found is None:
            found = plan_fetch(self.layout, call, self.settings.watched_slos)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[call] = found
        return found

    def data_verdict(self, vendor: str, data_classes: Sequence[str]) -> DataClassVerdict | None:
        handling, registry = self.settings.handling, self.settings.registry
        if not data_classes or handling is None or registry is None:
            return None
        signature = (vendor, tuple(data_classes))
        found = self._data_verdicts.get(signature)
        if found is None:
            found = data_class_verdict(handling, registry, vendor, data_classes)
            if len(self._data_verdicts) >= _MAX_DATA_VERDICTS:
                self._data_verdicts.clear()
            self._data_verdicts[signature] = found
        return found

    def cached(self, call: Call, now_ms: int) -> FetchedState | None:
        with self.lock:
            return self.cache.get(call, now_ms)

    def begin(self, now_ms: int) -> int | None:
        """The cache sequence a round trip starts at; None while Redis is held down."""
        with self.lock:
            if now_ms < self._down_until_ms:
                return None
            return self.cache.begin()

    def fetched(
        self, call: Call, plan: FetchPlan, reply: bytes | str, started: int, now_ms: int
    ) -> Fetched:
        """Read a round trip's reply, cache it (if nothing it read changed meanwhile) and keep
        it as the call's last known state."""
        fetched = parse_reply(self.layout, call, plan, reply)
        with self.lock:
            self.round_trips += 1
            self.cache.store(call, fetched, started, now_ms)
            self._last_known[call] = fetched.state
            self._last_known.move_to_end(call)
            if len(self._last_known) > max(self.settings.cache_entries, 1):
                self._last_known.popitem(last=False)
        return fetched

    def failed(self, now_ms: int) -> None:
        with self.lock:
            self._down_until_ms = now_ms + self.settings.retry_interval_ms

    def verdict(
        self,
        call: Call,
        state: FetchedState,
        now_ms: int,
        source: Source,
        data: DataClassVerdict | None,
        estimated_cost_usd: Decimal | None,
    ) -> Verdict:
        return decide(
            call,
            state,
            now_ms,
            data=data,
            slo_throttles=self.settings.slo_throttles,
            estimated_cost_usd=estimated_cost_usd,
            source=source,
        )

    def unavailable(
        self,
        call: Call,
        now_ms: int,
        error: str,
        data: DataClassVerdict | None,
        estimated_cost_usd: Decimal | None,
    ) -> Verdict:
        with self.lock:
            last_known = self._last_known.get(call)
        return unavailable(
            call,
            last_known,
            now_ms,
            self.settings.failure_mode,
            error,
            data=data,
            slo_throttles=self.settings.slo_throttles,
            estimated_cost_usd=estimated_cost_usd,
        )

    def notified(self, message: Mapping[str, Any]) -> None:
        """A pub/sub message: a (re)subscription confirmation or a changed hash's key."""
        kind = message.get("type")
        with self.lock:
            if kind == "subscribe":
                self.cache.subscribed(True)
            elif kind == "message":
                data = message.get("data")
                self.cache.changed(data.decode() if isinstance(data, bytes) else str(data))

    def unsubscribed(self) -> None:
        with self.lock:
            self.cache.subscribed(False)


def make_call(
    vendor: str,
    tool: str,
    user: str | None,
    team: str | None,
    project: str | None,
    org: str | None,
    api_key: str | None,
    model: str | None,
    environment: str | None,
) -> Call:
    """The call signature: `api_key` is the events' and budget scopes' `api_key_id`."""
    given = {
        "user": user,
        "team": team,
        "project": project,
        "org": org,
        "api_key_id": api_key,
        "model": model,
        "environment": environment,
    }
    return Call(vendor, tool, tuple(sorted((k, v) for k, v in given.items() if v is not None)))


def describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:200]
