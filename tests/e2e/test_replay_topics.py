"""`replay --source topics`: the input topics' records published in a time range, replayed
through the worker's own path (ingest stage, breakers, budgets, SLOs) without a worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.worker_process import cli_env, run_cli

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_794_960_000_000
REPO = Path(__file__).resolve().parents[2]


def call(n: int, vendor: str, ok: bool) -> dict[str, Any]:
    return {
        "event_id": f"{vendor}-{n}",
        "ts": rfc3339_ms(T0_MS + n * 100),
        "vendor": vendor,
        "tool": "chat",
        "status": "success" if ok else "error",
        "error_type": None if ok else "503",
        "duration_ms": 50,
    }


def publish(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    lines = b"".join(orjson.dumps(d) + b"\n" for d in documents)
    result = run_cli(["publish", "-"], env, stdin=lines)
    assert result.returncode == 0, result.stderr.decode()


def test_replaying_a_published_range_decides_like_the_worker(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    assert run_cli(["topics", "create"], env).returncode == 0
    publish(env, [call(n, "anthropic", ok=True) for n in range(20)])  # before the range
    time.sleep(1.5)
    start_ms = int(time.time() * 1000)
    burst = [call(100 + n, "openai", ok=False) for n in range(8)]
    publish(env, [*burst, burst[0]])  # a duplicate: counted once, as the worker would
    end_ms = int(time.time() * 1000)
    time.sleep(1.5)
    publish(env, [call(200 + n, "mistral", ok=False) for n in range(8)])  # after the range

    # configs/breakers.yaml: openai/chat opens after 2 consecutive failures.
    args = ["replay", "--source", "topics", "--from", str(start_ms), "--to", str(end_ms)]
    args += ["--policy", str(REPO / "configs")]
    result = run_cli([*args, "--json"], env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    opened = [d for d in lines if d["type"] == "transition" and d["to"] == "open"]
    assert [d["key"] for d in opened] == ["openai/chat"], result.stderr.decode()
    assert b"1 duplicate(s)" in result.stderr
    assert b"8 event(s)" in result.stderr
    again = run_cli([*args, "--json"], env, timeout=120)
    assert again.stdout == result.stdout  # a range replays the same, every time
