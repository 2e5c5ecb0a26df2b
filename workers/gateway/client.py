"""`GatewayClient` (sync, redis.Redis) and `AsyncGatewayClient` (redis.asyncio.Redis).

`check()` answers from the in-process cache when it can (no network), else with one round trip
(`workers.gateway.script`, sent by `workers.gateway.wire`), and never raises: a Redis error, a
timeout, a projection that is missing (flushed, being rebuilt) or a bug of ours all become a
verdict under the failure mode, with the call's last known state and its age
(`verdict.unavailable`). After a failed round trip, checks do not try Redis again for
`retry_interval_ms`.

A client built from a URL gets `socket_timeout_s` (50 ms) for connecting and reading, and no
command retries: redis-py's default retries with backoff would turn one outage into seconds of
waiting inside the gateway's request path. A client passed in is used as it is configured.

The cache follows `<prefix>changes` on a connection of its own (a daemon thread for the sync
client, a task for the async one, started by `start()` or the first check), without retries
either, so a dropped subscription is seen at once and the cache is off until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers.gateway.core import (
    DEFAULT_SOCKET_TIMEOUT_S,
    GatewayCore,
    GatewaySettings,
    describe,
    make_call,
)
from workers.gateway.script import FETCH_SCRIPT, FetchPlan
from workers.gateway.verdict import Call, Source, Verdict
from workers.gateway.wire import async_round_trip, round_trip
from workers.kernels.data_rules import DataClassVerdict

_LISTEN_POLL_S = 0.5
_BACKOFF_S = (0.05, 2.0)
"""First and longest wait between two subscription attempts."""


def _no_retry_kwargs(socket_timeout_s: float, sync: bool) -> dict[str, Any]:
    retry = Retry if sync else AsyncRetry
    return {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_timeout_s,
        "retry": retry(NoBackoff(), 0),
    }


def _subscriber_kwargs(pool: Any, sync: bool) -> dict[str, Any]:
    """The connection settings of `pool` for the subscription's own pool, without retries
    (a silent reconnection would hide the notifications missed meanwhile)."""
    kwargs = dict(pool.connection_kwargs)
    retry = Retry if sync else AsyncRetry
    kwargs["retry"] = retry(NoBackoff(), 0)
    kwargs["connection_class"] = pool.connection_class
    return kwargs


@dataclass(frozen=True, slots=True)
class _Pending:
    """A check the cache could not answer: what its round trip needs."""

    call: Call
    data: DataClassVerdict | None
    cost: Decimal | None
    now_ms: int
    plan: FetchPlan
    started: int


class _Checks:
    """What a check does around its one I/O call, shared by the sync and async clients."""

    core: GatewayCore

    def _answer(
        self,
        call: Call,
        data_classes: Sequence[str],
        estimated_cost_usd: Decimal | float | str | None,
    ) -> Verdict | _Pending:
        """The verdict without Redis (cached, or Redis held down), else the round trip to make."""
        data = self.core.data_verdict(call.vendor, tuple(data_classes))
        cost = None if estimated_cost_usd is None else Decimal(str(estimated_cost_usd))
        now_ms = self.core.settings.clock()
        state = self.core.cached(call, now_ms)
        if state is not None:
            return self.core.verdict(call, state, now_ms, Source.CACHE, data, cost)
        started = self.core.begin(now_ms)
        if started is None:
            return self.core.unavailable(call, now_ms, "redis down, retry pending", data, cost)
        return _Pending(call, data, cost, now_ms, self.core.plan(call), started)

    def _answered(self, pending: _Pending, reply: Any, error: Exception | None) -> Verdict:
        """The verdict from a round trip's reply, or from its failure."""
        call, data, cost, now_ms = pending.call, pending.data, pending.cost, pending.now_ms
        if error is None:
            try:
                fetched = self.core.fetched(call, pending.plan, reply, pending.started, now_ms)
                return self.core.verdict(call, fetched.state, now_ms, Source.REDIS, data, cost)
            except Exception as exc:  # ProjectionMissing, an odd reply
                error = exc
        self.core.failed(now_ms)
        return self.core.unavailable(call, now_ms, describe(error), data, cost)

    def _broken(self, vendor: str, tool: str, error: Exception) -> Verdict:
        """A failure outside Redis (bad arguments, a bug): the failure mode, never a raise."""
        now_ms = self.core.settings.clock()
        return self.core.unavailable(
            Call(str(vendor), str(tool)), now_ms, describe(error), None, None
        )


class GatewayClient(_Checks):
    """Sync gateway client; thread-safe. Close it (or use `with`) to stop the subscriber."""

    def __init__(
        self,
        client: redis.Redis | str,
        settings: GatewaySettings | None = None,
        *,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> None:
        self._owns_client = isinstance(client, str)
        if isinstance(client, str):
            client = redis.Redis.from_url(client, **_no_retry_kwargs(socket_timeout_s, True))
        self.redis = client
        self.core = GatewayCore(settings or GatewaySettings())
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        if self.core.caching:
            self._listener = threading.Thread(
                target=self._listen, name="guardstream-gateway-changes", daemon=True
            )
            self._listener.start()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the subscriber; close the Redis client if it was built here from a URL."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=2 * _LISTEN_POLL_S + 1)
        if self._owns_client:
            self.redis.close()

    def check(
        self,
        vendor: str,
        tool: str,
        *,
        user: str | None = None,
        team: str | None = None,
        project: str | None = None,
        org: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        environment: str | None = None,
        data_classes: Sequence[str] = (),
        estimated_cost_usd: Decimal | float | str | None = None,
    ) -> Verdict:
        """May this call go out now? Never raises."""
        try:
            call = make_call(vendor, tool, user, team, project, org, api_key, model, environment)
            pending = self._answer(call, data_classes, estimated_cost_usd)
            if isinstance(pending, Verdict):
                return pending
            try:
                reply = round_trip(self.redis, pending.plan.command, FETCH_SCRIPT)
            except Exception as exc:  # RedisError, OSError: the failure mode answers
                return self._answered(pending, None, exc)
            return self._answered(pending, reply, None)
        except Exception as exc:  # the gateway's request path must not see our errors
            return self._broken(vendor, tool, exc)

    def _listen(self) -> None:
        subscriber = redis.Redis(
            connection_pool=redis.ConnectionPool(
                **_subscriber_kwargs(self.redis.connection_pool, sync=True)
            )
        )
        wait = _BACKOFF_S[0]
        while not self._stop.is_set():
            pubsub = subscriber.pubsub()
            try:
                pubsub.subscribe(self.core.layout.changes)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=_LISTEN_POLL_S)
                    if message is not None:
                        self.core.notified(message)
                        wait = _BACKOFF_S[0]
            except Exception:  # any failure: the cache cannot be trusted until resubscribed
                self.core.unsubscribed()
                self._stop.wait(wait)
                wait = min(wait * 2, _BACKOFF_S[1])
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
        self.core.unsubscribed()
        subscriber.close()


class AsyncGatewayClient(_Checks):
    """Async gateway client for one event loop. `async with` it, or `start()` / `aclose()`."""

    def __init__(
        self,
        client: aioredis.Redis | str,
        settings: GatewaySettings | None = None,
        *,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> None:
        self._owns_client = isinstance(client, str)
        if isinstance(client, str):
            client = aioredis.Redis.from_url(client, **_no_retry_kwargs(socket_timeout_s, False))
        self.redis = client
        self.core = GatewayCore(settings or GatewaySettings())
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncGatewayClient:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start following the change notifications (the first check does it too)."""
        if self._listener is None and self.core.caching:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def aclose(self) -> None:
        """Stop the subscriber; close the Redis client if it was built here from a URL."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._owns_client:
            await self.redis.aclose()

    async def check(
        self,
        vendor: str,
        tool: str,
        *,
        user: str | None = None,
        team: str | None = None,
        project: str | None = None,
        org: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        environment: str | None = None,
        data_classes: Sequence[str] = (),
        estimated_cost_usd: Decimal | float | str | None = None,
    ) -> Verdict:
        """May this call go out now? Never raises."""
        try:
            call = make_call(vendor, tool, user, team, project, org, api_key, model, environment)
            self.start()
            pending = self._answer(call, data_classes, estimated_cost_usd)
            if isinstance(pending, Verdict):
                return pending
            try:
                reply = await async_round_trip(self.redis, pending.plan.command, FETCH_SCRIPT)
            except Exception as exc:  # RedisError, OSError: the failure mode answers
                return self._answered(pending, None, exc)
            return self._answered(pending, reply, None)
        except Exception as exc:  # the gateway's request path must not see our errors
            return self._broken(vendor, tool, exc)

    async def _listen(self) -> None:
        pool_kwargs = _subscriber_kwargs(self.redis.connection_pool, sync=False)
        subscriber = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**pool_kwargs))
        wait = _BACKOFF_S[0]
        try:
            while True:
                try:
                    await self._follow(subscriber)
                except Exception:  # any failure: the cache cannot be trusted until resubscribed
                    self.core.unsubscribed()
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, _BACKOFF_S[1])
        finally:
            self.core.unsubscribed()
            await subscriber.aclose()

    async def _follow(self, subscriber: aioredis.Redis) -> None:
        pubsub = subscriber.pubsub()
        try:
            await pubsub.subscribe(self.core.layout.changes)
            while True:
                message = await pubsub.get_message(timeout=_LISTEN_POLL_S)
                if message is not None:
                    self.core.notified(message)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
