"""The dependency cascade end to end (issue 13): a worker, `guardstream cascade`, the
projector and a gateway, as a deployment runs them, on a real broker and redis-server.

Failing calls open the `openai/embeddings` breaker: the cascade marks `tool:embeddings`,
the `vector-search` tool that requires it and the `rag` module unavailable, publishes and
audits each change, and the gateway denies `vector-search` naming the chain. The cascade is
then SIGKILLed while the breaker half-opens; its successor resyncs from the topics and
publishes the recovery once. A second cascade fences the first. The trail verifies (one
chain, no fork) and `replay --source audit --verify` re-derives every cascade decision.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import (
    eventually,
    export_when_settled,
    fast_breaker_text,
    jsonl,
    live_state,
    read_topic,
)
from tests.support.worker_process import cascade_process, run_cli
from workers.gateway import GatewayClient, GatewaySettings

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

T0_MS = 1_795_000_000_000
WAIT_MS = 2000
GRAPH = yaml.safe_dump(
    {
        "dependencies": {
            "dep.tool.embeddings": {"tool": "embeddings"},
            "dep.tool.vector-search": {
                "tool": "vector-search",
                "depends_on": ["dep.tool.embeddings"],
            },
            "dep.core.rag": {
                "module": "rag",
                "depends_on": [
                    "dep.tool.vector-search",
                    {"ref": "dep.tool.search", "optional": True},
                ],
            },
            "dep.tool.search": {"tool": "search"},
        }
    }
)
DOWN_CHAIN = ["tool:embeddings", "tool:vector-search", "module:rag"]


def failing_embeddings(first: int, count: int, ts_ms: int) -> list[dict[str, Any]]:
    return [
        call_document(
            f"e{n}", rfc3339_ms(ts_ms + n), vendor="openai", tool="embeddings", **outcome(True)
        )
        for n in range(first, first + count)
    ]


def resynced(log_path: Path) -> Callable[[], bool]:
    return lambda: log_path.exists() and "cascade resynced" in log_path.read_text()


def publish(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    published = run_cli(["publish", "-"], env, stdin=jsonl(documents))
    assert published.returncode == 0, published.stderr.decode()


def latest(records: list[dict[str, Any]]) -> dict[str, str]:
    """subject -> availability, the newest record of each (what compaction keeps)."""
    return {record["subject"]: record["availability"] for record in records}


def test_the_cascade_decides_publishes_audits_survives_sigkill_and_replays(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    files = {"breakers.yaml": fast_breaker_text(WAIT_MS), "dependency_graph.yaml": GRAPH}
    with live_state(
        bootstrap_servers, topic_prefix, tmp_path, files, GUARDSTREAM_AUDIT_LEVEL="forensic"
    ) as live:
        env = live.env
        cascade = cascade_process(env, tmp_path / "cascade.log")
        cascade.start()
        eventually("the cascade started", resynced(cascade.log_path))
        publish(env, failing_embeddings(0, 5, T0_MS))

        def states() -> list[dict[str, Any]]:
            return read_topic(env, "dependency-state")

        eventually(
            "the chain down on dependency-state",
            lambda: latest(states()) == dict.fromkeys(DOWN_CHAIN, "unavailable"),
        )
        rag = next(r for r in states() if r["subject"] == "module:rag")
        assert rag["cause"] == ["dep.core.rag", "dep.tool.vector-search", "dep.tool.embeddings"]
        assert rag["breaker_key"] == "openai/embeddings"
        assert rag["trigger"] == "tool:embeddings down"

        gateway = GatewayClient(live.redis.url, GatewaySettings(topic_prefix=topic_prefix))
        eventually(
            "the gateway denies vector-search for its dependency",
            lambda: gateway.check("internal", "vector-search").decision == "deny",
        )
        verdict = gateway.check("internal", "vector-search")
        assert [r.kind for r in verdict.reasons] == ["dependency_unavailable"]
        assert "dep.tool.embeddings" in verdict.reasons[0].message
        assert gateway.check("internal", "sql").decision == "allow"
        gateway.close()

        # SIGKILL the cascade; the breaker half-opens while nobody cascades.
        cascade.kill()
        publish(env, [{"type": "clock", "ts": rfc3339_ms(T0_MS + WAIT_MS + 500)}])
        eventually(
            "the breaker half-open",
            lambda: any(r["state"] == "half_open" for r in read_topic(env, "breaker-state")),
        )
        assert latest(states()) == dict.fromkeys(DOWN_CHAIN, "unavailable")
        cascade.start()
        eventually(
            "the recovery resynced",
            lambda: latest(states()) == dict.fromkeys(DOWN_CHAIN, "available"),
        )

        # A second cascade fences the first: at its next decision the first stops (exit 1)
        # instead of fighting back, and the second decides.
        second = cascade_process(env, tmp_path / "cascade-2.log")
        second.start()
        eventually("the second cascade started", resynced(second.log_path))
        publish(env, failing_embeddings(5, 5, T0_MS + WAIT_MS + 1000))  # the trial calls fail
        assert cascade.wait(timeout=60), "the fenced cascade did not stop"
        assert cascade.returncode == 1
        eventually(
            "the chain down again",
            lambda: latest(states()) == dict.fromkeys(DOWN_CHAIN, "unavailable"),
        )
        assert second.alive
        trail = export_when_settled(env, tmp_path / "trail.jsonl")
        second.stop()

    records = [orjson.loads(line) for line in trail.read_bytes().splitlines()]
    chain = sorted((r for r in records if r["chain"] == "dependencies"), key=lambda r: r["seq"])
    assert [r["seq"] for r in chain] == list(range(len(chain)))
    decided = [
        (r["payload"]["subject"], r["payload"]["to"], r["payload"]["trigger"]) for r in chain
    ]
    assert decided == [
        *((subject, "unavailable", "tool:embeddings down") for subject in DOWN_CHAIN),
        *((subject, "available", "resync") for subject in DOWN_CHAIN),
        *((subject, "unavailable", "tool:embeddings down") for subject in DOWN_CHAIN),
    ]
    verified = run_cli(["audit", "verify", "--input", str(trail)], env, timeout=120)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    replay = ["replay", "--source", "audit", "--input", str(trail), "--json", "--verify"]
    result = run_cli(replay, env, timeout=180)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    summary = orjson.loads(result.stdout)
    assert summary["mismatches"] == 0
    assert summary["recorded"] >= len(chain) + 3  # the breaker's transitions too
