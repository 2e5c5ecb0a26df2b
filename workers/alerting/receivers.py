"""Where forwarded alerts go (shell: HTTP). A receiver takes a batch of Alertmanager-shaped
alerts and says whether it took them, and if not, whether trying again can help.

Transient: no connection, a timeout, HTTP 429 or 5xx (the forwarder retries with backoff).
Permanent: any other refusal (400: Alertmanager found the batch invalid; retrying sends the
same bytes and gets the same answer), which goes to the dead-letter topic at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

DEFAULT_TIMEOUT_S = 10.0
_MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    permanent: bool = False
    reason: str = ""


DELIVERED = Outcome(delivered=True)


class Receiver(Protocol):
    name: str

    async def send(self, alerts: list[dict[str, Any]]) -> Outcome: ...

    async def close(self) -> None: ...


class AlertmanagerReceiver:
    """Alertmanager's v2 API: `POST <url>/api/v2/alerts` with a JSON array of alerts."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.name = "alertmanager"
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alerts: list[dict[str, Any]]) -> Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.endpoint,
                data=orjson.dumps(alerts),
                headers={"Content-Type": "application/json"},
            ) as response:
                if response.status < 300:
                    return DELIVERED
                text = (await response.text())[:_MAX_REASON_CHARS]
                reason = f"{self.endpoint} answered {response.status}: {text.strip()}"
                transient = response.status == 429 or response.status >= 500
                return Outcome(delivered=False, permanent=not transient, reason=reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"{self.endpoint}: {type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]
            return Outcome(delivered=False, reason=reason)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
