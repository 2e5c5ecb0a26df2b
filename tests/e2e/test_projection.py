"""The live-state projection end to end (issue 13): a worker and `guardstream project` as a
user runs them, a real broker and a real redis-server, and a gateway asking `check()`.

Failing calls open a breaker and spend halts a team's budget: Redis shows both and the
gateway denies calls to the breaker's vendor/tool and the team's calls. Then Redis
is flushed, stopped while the worker goes on deciding, and brought back empty; the projector
is SIGKILLed while the state moves on. Each time Redis comes back to the newest state by
itself, and never shows an older one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.redis import RedisServer
from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import fast_breaker_text, jsonl, live_state
from tests.support.worker_process import run_cli
from workers.gateway import GatewayClient, GatewaySettings
from workers.metrics import BREAKER_TRANSITIONS
from workers.projection.layout import RedisLayout, Surface

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

T0_MS = 1_795_000_000_000
WAIT_MS = 2000
BREAKERS = fast_breaker_text(WAIT_MS)
BUDGETS = yaml.safe_dump(
    {
        "budgets": {
            "bud.team.research": {
                "scope": {"team": "research"},
                "period": "daily",
                "limit_usd": 1,
                "hard": True,
            }
        }
    }
)


def calls(first: int, count: int, *, ok: bool, ts_ms: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        call_document(f"c{n}", rfc3339_ms(ts_ms + n), **outcome(not ok), **extra)
        for n in range(first, first + count)
    ]


def tick(ts_ms: int) -> dict[str, Any]:
    return {"type": "clock", "ts": rfc3339_ms(ts_ms)}


def publish(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    published = run_cli(["publish", "-"], env, stdin=jsonl(documents))
    assert published.returncode == 0, published.stderr.decode()


def eventually(what: str, check: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.2)


def test_redis_follows_the_state_topics_through_flushes_outages_and_a_killed_projector(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    files = {"breakers.yaml": BREAKERS, "budgets.yaml": BUDGETS}
    with live_state(bootstrap_servers, topic_prefix, tmp_path, files) as live:
        env, redis_server, worker, projector = live.env, live.redis, live.worker, live.projector
        layout = RedisLayout.for_topic_prefix(topic_prefix)
        breaker = layout.state(Surface.BREAKER, "openai/chat")
        budget = layout.state(Surface.BUDGET, "bud.team.research")

        def field(key: str, name: str) -> str | None:
            try:
                with redis_server.client() as client:
                    value = client.hget(key, name)
            except OSError:
                return None
            return None if value is None else value.decode()

        def shows(key: str, name: str, expected: str) -> Callable[[], bool]:
            return lambda: field(key, name) == expected

        publish(env, calls(0, 5, ok=False, ts_ms=T0_MS))
        publish(env, calls(5, 3, ok=True, ts_ms=T0_MS + 10, team="research", cost_usd="0.6"))
        publish(env, [tick(T0_MS + 1000)])  # budgets count once every partition passed it
        eventually("the breaker open in Redis", shows(breaker, "state", "open"))
        eventually("the budget halted in Redis", shows(budget, "action", "halt"))
        assert field(breaker, "fallback_action") == "use_cache"
        assert field(budget, "scope") == '{"team":"research"}'
        gateway = GatewayClient(redis_server.url, GatewaySettings(topic_prefix=topic_prefix))
        refused = gateway.check("openai", "chat")
        assert refused.decision == "deny"
        assert refused.fallback_action == "use_cache"
        assert [r.kind for r in refused.reasons] == ["breaker_open"]
        halted = gateway.check("mistral", "chat", team="research")
        assert halted.decision == "deny"
        assert [r.kind for r in halted.reasons] == ["budget_halt"]
        assert gateway.check("mistral", "chat", team="support").decision == "allow"

        # FLUSHALL: the projection is rebuilt from the topics.
        with redis_server.client() as client:
            client.flushall()
        eventually("the breaker back after FLUSHALL", shows(breaker, "state", "open"))
        eventually("the budget back after FLUSHALL", shows(budget, "action", "halt"))
        eventually(
            "the same verdicts after the rebuild",
            lambda: (
                gateway.check("openai", "chat").reasons == refused.reasons
                and gateway.check("mistral", "chat", team="research").reasons == halted.reasons
            ),
        )

        # Redis down: the worker goes on deciding (the breaker half-opens), the projector
        # waits; Redis back empty: rebuilt, at the newest state.
        transitions = worker.total(f"{BREAKER_TRANSITIONS}_total")
        redis_server.shutdown()
        publish(env, [tick(T0_MS + WAIT_MS + 100)])
        assert worker.wait_for(f"{BREAKER_TRANSITIONS}_total", transitions + 1) > transitions
        assert projector.alive
        redis_server.start()
        eventually("half-open after the outage", shows(breaker, "state", "half_open"))
        eventually("the budget after the outage", shows(budget, "action", "halt"))
        eventually(
            "the gateway lets trial calls through a half-open breaker",
            lambda: gateway.check("openai", "chat").decision == "allow",
        )
        assert gateway.check("openai", "chat", team="research").decision == "deny"
        gateway.close()
        assert projector.alive
        assert worker.alive()

        # The projector killed while the breaker closes; a new one catches up.
        offsets_before = _offsets(redis_server)
        projector.kill()
        publish(env, calls(8, 3, ok=True, ts_ms=T0_MS + WAIT_MS + 200))
        assert worker.wait_for(f"{BREAKER_TRANSITIONS}_total", transitions + 2)
        assert field(breaker, "state") == "half_open"  # nobody projects meanwhile
        projector.start()
        eventually("closed after the projector's restart", shows(breaker, "state", "closed"))
        offsets_after = _offsets(redis_server)
        assert all(offsets_after[k] >= v for k, v in offsets_before.items())
        assert projector.alive


def _offsets(redis_server: RedisServer) -> dict[bytes, int]:
    with redis_server.client() as client:
        meta: dict[bytes, bytes] = client.hgetall(next(iter(client.scan_iter("*:meta"))))
    return {k: int(v) for k, v in meta.items() if k.startswith(b"offset:")}


RATE_LIMITED = yaml.safe_dump(
    {
        "budgets": {
            "bud.vendor.mistral": {
                "scope": {"vendor": "mistral"},
                "period": "daily",
                "limit_usd": 1000,
                "rate_limits": {"requests_per_minute": 5},
            }
        }
    }
)


def test_a_rate_limit_decided_by_the_worker_throttles_with_its_retry_after(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    # Event time now: the gateway times the window's reset against its own clock.
    now_ms = int(time.time() * 1000)
    with live_state(
        bootstrap_servers, topic_prefix, tmp_path, {"budgets.yaml": RATE_LIMITED}
    ) as live:
        publish(live.env, calls(0, 8, ok=True, ts_ms=now_ms, vendor="mistral"))
        publish(live.env, [tick(now_ms + 1000)])  # budgets count once every partition passed it
        gateway = GatewayClient(live.redis.url, GatewaySettings(topic_prefix=topic_prefix))
        eventually(
            "the gateway throttles mistral",
            lambda: gateway.check("mistral", "chat").decision == "throttle",
        )
        verdict = gateway.check("mistral", "chat")
        gateway.close()
    assert [r.kind for r in verdict.reasons] == ["rate_limit"]
    # The window (one minute of event time from the first call) resets within the minute.
    assert verdict.retry_after_ms is not None
    assert 0 < verdict.retry_after_ms <= 60_000
    assert "no requests left" in verdict.reasons[0].message
