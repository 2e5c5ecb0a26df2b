"""The alert forwarder against a real broker and a real Alertmanager (Debian's
prometheus-alertmanager): firing -> resolved, a page inhibiting its ticket, a restart that
re-sends what is firing to an Alertmanager that lost it, an outage that delays and loses
nothing, and a receiver that refuses alerts for good (dead-lettered with its answer, the
rest delivered). Then the routed receivers on a local HTTP server: PagerDuty v2 events,
a Slack-compatible hook that fails twice first, and a webhook archive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devstack.alertmanager import AlertmanagerServer
from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.codec import decode, encode
from schemas.dead_letter import DeadLetter, DeadLetterKind
from schemas.types import Severity, from_epoch_ms
from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog, TopicName
from workers.alerting.forwarder import Forwarder, ForwardSettings
from workers.alerting.receivers import AlertmanagerReceiver, receiver_of
from workers.alerting.routes import Router, RoutesSpec

pytestmark = pytest.mark.kafka

VERSION = "b" * 64
BOUND_S = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


def breaker_open(vendor: str, at_ms: int) -> Alert:
    return firing_alert(
        "breaker_open",
        {"vendor": vendor, "tool": "chat", "key": f"{vendor}/chat"},
        severity=Severity.CRITICAL,
        summary=f"circuit breaker {vendor}/chat opened",
        at_ms=at_ms,
        policy_version=VERSION,
        extra={"reason": "failure_rate 0.62 >= 0.50"},
    )


def burn(notify: str, severity: Severity, at_ms: int) -> Alert:
    return firing_alert(
        "slo_burn_rate",
        {"slo": "slo.availability", "slo_key": "openai/chat", "severity": notify},
        severity=severity,
        summary=f"SLO slo.availability burning ({notify})",
        at_ms=at_ms,
        policy_version=VERSION,
    )


def resolved(alert: Alert, at_ms: int) -> Alert:
    return alert.model_copy(
        update={
            "alert_id": f"{alert.fingerprint}-{at_ms}-resolved",
            "status": AlertStatus.RESOLVED,
            "ends_at": from_epoch_ms(at_ms),
        }
    )


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer() as server:
        yield server


async def publish(bootstrap: str, catalog: TopicCatalog, *alerts: Alert) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for alert in alerts:
            await producer.send_and_wait(
                catalog.name(TopicName.ALERTS), encode(alert), key=alert.fingerprint.encode()
            )
    finally:
        await producer.stop()


@asynccontextmanager
async def forwarding(
    bootstrap: str, catalog: TopicCatalog, url: str, group: str, **settings: Any
) -> AsyncIterator[Forwarder]:
    forward_settings = ForwardSettings(**{"resend_interval_s": 60.0, **settings})
    forwarder = Forwarder(
        {"bootstrap_servers": bootstrap},
        bootstrap,
        catalog,
        [AlertmanagerReceiver(url, forward_settings.rendering, timeout_s=2.0)],
        group_id=group,
        settings=forward_settings,
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stopping))
    try:
        yield forwarder
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


async def until(what: str, condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + BOUND_S
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {BOUND_S} s: {what}"
        await asyncio.sleep(0.2)


def by_fingerprint(server: AlertmanagerServer, fingerprints: set[str]) -> dict[str, Any]:
    return {
        a["labels"]["guardstream_fingerprint"]: a
        for a in server.alerts()
        if a["labels"].get("guardstream_fingerprint") in fingerprints
    }


async def test_firing_then_resolved_and_a_page_inhibits_its_ticket(
    bootstrap_servers: str, catalog: TopicCatalog, alertmanager: AlertmanagerServer
) -> None:
    t = now_ms()
    breaker, page, ticket = (
        breaker_open("openai", t),
        burn("page", Severity.PAGE, t),
        burn("ticket", Severity.WARNING, t),
    )
    ours = {breaker.fingerprint, page.fingerprint, ticket.fingerprint}
    await publish(bootstrap_servers, catalog, breaker, page, ticket)
    async with forwarding(bootstrap_servers, catalog, alertmanager.url, "g1") as forwarder:
        await until("three alerts", lambda: len(by_fingerprint(alertmanager, ours)) == 3)
        alerts = by_fingerprint(alertmanager, ours)
        assert alerts[page.fingerprint]["status"]["state"] == "active"
        assert alerts[ticket.fingerprint]["status"]["state"] == "suppressed"
        assert alerts[ticket.fingerprint]["status"]["inhibitedBy"]
        labels = alerts[breaker.fingerprint]["labels"]
        assert (labels["alertname"], labels["severity"], labels["vendor"]) == (
            "breaker_open",
            "critical",
            "openai",
        )
        assert alerts[breaker.fingerprint]["annotations"]["reason"] == "failure_rate 0.62 >= 0.50"
        await publish(bootstrap_servers, catalog, resolved(breaker, now_ms()))
        await until(
            "the breaker alert resolved",
            lambda: breaker.fingerprint not in by_fingerprint(alertmanager, ours),
        )
        assert set(by_fingerprint(alertmanager, ours)) == {page.fingerprint, ticket.fingerprint}
        assert forwarder.counters.delivered == 4
        assert forwarder.counters.firing == 2


async def test_a_restart_resends_what_is_firing_to_an_alertmanager_that_lost_it(
    bootstrap_servers: str, catalog: TopicCatalog
) -> None:
    t = now_ms()
    still, gone = breaker_open("openai", t), breaker_open("mistral", t)
    ours = {still.fingerprint, gone.fingerprint}
    with AlertmanagerServer() as first:
        await publish(bootstrap_servers, catalog, still, gone, resolved(gone, t + 1))
        async with forwarding(bootstrap_servers, catalog, first.url, "g2") as forwarder:
            await until("delivered", lambda: forwarder.counters.delivered == 3)
            await until(
                "one firing", lambda: set(by_fingerprint(first, ours)) == {still.fingerprint}
            )
    with AlertmanagerServer() as second:  # empty: it lost every alert
        async with forwarding(bootstrap_servers, catalog, second.url, "g2") as restarted:
            await until("caught up", restarted.caught_up.is_set)
            await until("re-sent", lambda: set(by_fingerprint(second, ours)) == {still.fingerprint})
            assert restarted.counters.delivered == 0  # nothing new: the group had it all
            assert restarted.counters.resent == 1


async def test_an_outage_delays_delivery_and_loses_nothing(
    bootstrap_servers: str, catalog: TopicCatalog, alertmanager: AlertmanagerServer
) -> None:
    alert = breaker_open("openai", now_ms())
    alertmanager.shutdown()
    await publish(bootstrap_servers, catalog, alert)
    async with forwarding(bootstrap_servers, catalog, alertmanager.url, "g3") as forwarder:
        await until("a failed attempt", lambda: forwarder.counters.failed_attempts >= 2)
        assert forwarder.counters.delivered == 0
        alertmanager.start()
        await until(
            "delivered",
            lambda: alert.fingerprint in by_fingerprint(alertmanager, {alert.fingerprint}),
        )
        assert forwarder.counters.delivered == 1
        assert forwarder.counters.dead_lettered == 0


@asynccontextmanager
async def local_receiver(
    handle: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A real HTTP server on a free loopback port answering every POST with `handle`; its
    base URL."""
    app = web.Application()
    app.router.add_post("/{path:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def refusing_receiver(refused_vendor: str) -> AsyncIterator[tuple[str, list[Any]]]:
    """An HTTP receiver answering 400 to any batch holding an alert for `refused_vendor`."""
    taken: list[Any] = []

    async def alerts(request: web.Request) -> web.Response:
        batch = orjson.loads(await request.read())
        if any(a["labels"].get("vendor") == refused_vendor for a in batch):
            return web.Response(status=400, text=f"vendor {refused_vendor} is not routable")
        taken.extend(batch)
        return web.Response(status=200)

    async with local_receiver(alerts) as url:
        yield url, taken


async def test_alerts_refused_for_good_are_dead_lettered_with_the_answer_and_the_rest_delivered(
    bootstrap_servers: str, catalog: TopicCatalog
) -> None:
    t = now_ms()
    good, bad, later = breaker_open("openai", t), breaker_open("bad", t), breaker_open("cohere", t)
    await publish(bootstrap_servers, catalog, good, bad)
    async with (
        refusing_receiver("bad") as (url, taken),
        forwarding(bootstrap_servers, catalog, url, "g4") as forwarder,
    ):
        await until("dead-lettered", lambda: forwarder.counters.dead_lettered == 1)
        await publish(bootstrap_servers, catalog, later)
        await until("the next delivered", lambda: forwarder.counters.delivered == 2)
    assert {a["labels"]["vendor"] for a in taken} >= {"openai", "cohere"}
    letters = await dead_letters(bootstrap_servers, catalog, 1)
    assert letters[0].error_kind is DeadLetterKind.DELIVERY
    assert "answered 400: vendor bad is not routable" in letters[0].error
    assert decode(Alert, letters[0].original).fingerprint == bad.fingerprint


async def dead_letters(bootstrap: str, catalog: TopicCatalog, count: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        catalog.name(TopicName.DEAD_LETTER),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + BOUND_S
        while len(found) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [decode(DeadLetter, r.value or b"") for r in records]
    finally:
        await consumer.stop()
    return found


@asynccontextmanager
async def capturing_receiver(
    failures_before_success: int = 0,
) -> AsyncIterator[tuple[str, dict[str, list[Any]]]]:
    """One HTTP server for several receivers, a path each; every JSON body kept by path. The
    first `failures_before_success` requests to /slack answer 503."""
    seen: dict[str, list[Any]] = {}
    failures = [failures_before_success]

    async def take(request: web.Request) -> web.Response:
        if request.path == "/slack" and failures[0] > 0:
            failures[0] -= 1
            return web.Response(status=503, text="try later")
        seen.setdefault(request.path, []).append(orjson.loads(await request.read()))
        return web.Response(status=202 if request.path == "/pd" else 200)

    async with local_receiver(take) as url:
        yield url, seen


async def test_routes_send_pages_to_pagerduty_budgets_to_chat_and_everything_to_the_archive(
    bootstrap_servers: str, catalog: TopicCatalog
) -> None:
    t = now_ms()
    page = burn("page", Severity.PAGE, t)
    budget = firing_alert(
        "budget_threshold",
        {"budget": "bud.team.research", "team": "research"},
        severity=Severity.WARNING,
        summary="team research spent 80% of its daily budget",
        at_ms=t,
        policy_version=VERSION,
    )
    await publish(bootstrap_servers, catalog, page, budget, resolved(page, t + 1000))
    async with capturing_receiver(failures_before_success=2) as (url, seen):
        spec = RoutesSpec.model_validate(
            {
                "receivers": {
                    "pager": {"type": "pagerduty", "url": f"{url}/pd", "routing_key_env": "PD"},
                    "chat": {"type": "slack", "url": f"{url}/slack"},
                    "archive": {"type": "webhook", "url": f"{url}/archive"},
                },
                "routes": [
                    {"match": {"severity": "page"}, "receiver": "pager", "continue": True},
                    {"match_re": {"kind": "budget_.*"}, "receiver": "chat", "continue": True},
                    {"receiver": "archive"},
                ],
            }
        )
        settings = ForwardSettings()
        receivers = [
            receiver_of(name, r, settings.rendering, {"PD": "routing-key"})
            for name, r in spec.receivers.items()
        ]
        router = Router(spec)
        forwarder = Forwarder(
            {"bootstrap_servers": bootstrap_servers},
            bootstrap_servers,
            catalog,
            receivers,
            group_id="g5",
            settings=settings,
            route=router.receivers_for,
        )
        stopping = asyncio.Event()
        task = asyncio.create_task(forwarder.run(stopping))
        try:
            await until("the slack retries", lambda: len(seen.get("/slack", [])) == 1)
            await until(
                "archived", lambda: sum(len(p["alerts"]) for p in seen.get("/archive", [])) == 3
            )
        finally:
            stopping.set()
            await asyncio.wait_for(task, 30)
    actions = [(e["event_action"], e["dedup_key"]) for e in seen["/pd"]]
    assert actions == [("trigger", page.fingerprint), ("resolve", page.fingerprint)]
    assert seen["/pd"][0]["routing_key"] == "routing-key"
    assert "team research spent 80%" in seen["/slack"][0]["text"]
    archived = [a for p in seen["/archive"] for a in p["alerts"]]
    assert [a["status"] for a in archived if a["fingerprint"] == page.fingerprint] == [
        "firing",
        "resolved",
    ]
    assert forwarder.counters.of("chat").failed_attempts == 2
    assert forwarder.counters.resent == 0  # only Alertmanager is sent firing alerts again


async def test_a_recreated_alerts_topic_is_delivered_from_its_beginning(
    bootstrap_servers: str, catalog: TopicCatalog, alertmanager: AlertmanagerServer
) -> None:
    t = now_ms()
    old = [breaker_open(f"old{n}", t) for n in range(3)]
    await publish(bootstrap_servers, catalog, *old)
    async with forwarding(bootstrap_servers, catalog, alertmanager.url, "g6") as forwarder:
        await until("delivered", lambda: forwarder.counters.delivered == 3)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([catalog.name(TopicName.ALERTS)])
    finally:
        await admin.close()
    async with TopicAdmin({"bootstrap_servers": bootstrap_servers}) as topics:
        await until_created(topics, catalog)
    new = breaker_open("new", t)
    await publish(bootstrap_servers, catalog, new)
    async with forwarding(bootstrap_servers, catalog, alertmanager.url, "g6") as restarted:
        await until("the new one delivered", lambda: restarted.counters.delivered == 1)


async def until_created(topics: TopicAdmin, catalog: TopicCatalog) -> None:
    """Create the deleted topic again (the broker deletes in the background: retry)."""
    deadline = time.monotonic() + BOUND_S
    while True:
        try:
            await topics.ensure(catalog.specs())
            return
        except Exception:
            assert time.monotonic() < deadline, "the alerts topic was not created again"
            await asyncio.sleep(0.5)
