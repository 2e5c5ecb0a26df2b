"""Where forwarded alerts go (shell: HTTP). A receiver takes a batch of deliveries and says
whether it took them, and if not, whether trying again can help.

Transient: no connection, a timeout, HTTP 429 or 5xx (the forwarder retries with backoff).
Permanent: any other refusal (400: the receiver found the request invalid; sending the same
bytes again gets the same answer), which goes to the dead-letter topic at once.

Only Alertmanager is sent firing alerts again (`resends`): it ends an alert that stops being
sent, while a chat channel or a pager would show every re-send as a new message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from workers.alerting import payloads
from workers.alerting.postable import Delivery, Links
from workers.alerting.routes import ReceiverSpec, ReceiverType

DEFAULT_TIMEOUT_S = 10.0
_MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    permanent: bool = False
    reason: str = ""


DELIVERED = Outcome(delivered=True)


@dataclass(frozen=True, slots=True)
class Rendering:
    """How alerts are rendered for every receiver of one forwarder."""

    ttl_ms: int
    links: Links


class Receiver(Protocol):
    name: str
    resends: bool

    async def send(self, deliveries: Sequence[Delivery], now_ms: int) -> Outcome: ...

    async def close(self) -> None: ...


class _HttpPoster:
    """JSON POSTs on one session, each answer turned into an Outcome."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, document: Any) -> Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.url, data=orjson.dumps(document), headers={"Content-Type": "application/json"}
            ) as response:
                if response.status < 300:
                    return DELIVERED
                text = (await response.text())[:_MAX_REASON_CHARS].strip()
                transient = response.status == 429 or response.status >= 500
                reason = f"{self.url} answered {response.status}: {text}"
                return Outcome(delivered=False, permanent=not transient, reason=reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"{self.url}: {type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]
            return Outcome(delivered=False, reason=reason)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AlertmanagerReceiver:
    """Alertmanager's v2 API: `POST <url>/api/v2/alerts` with a JSON array of alerts."""

    resends = True

    def __init__(
        self,
        url: str,
        rendering: Rendering,
        name: str = "alertmanager",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.rendering = rendering
        self._http = _HttpPoster(url.rstrip("/") + "/api/v2/alerts", timeout_s)

    async def send(self, deliveries: Sequence[Delivery], now_ms: int) -> Outcome:
        r = self.rendering
        return await self._http.post(
            payloads.alertmanager_alerts(deliveries, now_ms, r.ttl_ms, r.links)
        )

    async def close(self) -> None:
        await self._http.close()


class WebhookReceiver:
    """A generic JSON webhook (Alertmanager's webhook payload) or a Slack-compatible one."""

    resends = False

    def __init__(
        self,
        name: str,
        url: str,
        kind: ReceiverType,
        rendering: Rendering,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.kind = kind
        self.rendering = rendering
        self._http = _HttpPoster(url, timeout_s)

    async def send(self, deliveries: Sequence[Delivery], now_ms: int) -> Outcome:
        if self.kind is ReceiverType.SLACK:
            return await self._http.post(payloads.slack_message(deliveries))
        r = self.rendering
        return await self._http.post(
            payloads.webhook_payload(self.name, deliveries, now_ms, r.ttl_ms, r.links)
        )

    async def close(self) -> None:
        await self._http.close()


class PagerDutyReceiver:
    """PagerDuty Events API v2: one event per alert, in order; the first refusal stops the
    batch (PagerDuty de-duplicates what a retry sends again by `dedup_key`)."""

    resends = False

    def __init__(
        self,
        name: str,
        url: str,
        routing_key: str,
        source: str = "guardstream",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.routing_key = routing_key
        self.source = source
        self._http = _HttpPoster(url, timeout_s)

    async def send(self, deliveries: Sequence[Delivery], now_ms: int) -> Outcome:
        for delivery in deliveries:
            event = payloads.pagerduty_event(delivery, self.routing_key, self.source)
            outcome = await self._http.post(event)
            if not outcome.delivered:
                return outcome
        return DELIVERED

    async def close(self) -> None:
        await self._http.close()


def receiver_of(
    name: str, spec: ReceiverSpec, rendering: Rendering, environ: Mapping[str, str]
) -> Receiver:
    """The receiver a routes file's entry describes (its secrets read from `environ`)."""
    url = spec.resolved_url(environ)
    if spec.type is ReceiverType.PAGERDUTY:
        return PagerDutyReceiver(name, url, spec.routing_key(environ))
    return WebhookReceiver(name, url, spec.type, rendering)
