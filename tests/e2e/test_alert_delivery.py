"""Alerts reach Alertmanager the way a deployment runs it (issue 14): an exactly-once worker
decides, `guardstream alerts forward` delivers, a real prometheus-alertmanager shows the
breaker's alert while it is open and no more once it closed; the forwarder's /metrics count
both deliveries. `guardstream breakers --watch` shows the open breaker meanwhile."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.alertmanager import AlertmanagerServer
from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import eventually, fast_breaker_text, jsonl, scenario_env
from tests.support.worker_process import run_cli, running_forwarder, running_worker
from workers.metrics import ALERTS_DELIVERED
from workers.metrics_scrape import scrape, total

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_795_000_000_000
WAIT_MS = 2000


def calls(
    vendor: str, first: int, count: int, *, failing: bool, ts_ms: int
) -> list[dict[str, Any]]:
    return [
        call_document(f"{vendor}-{n}", rfc3339_ms(ts_ms + n), vendor=vendor, **outcome(failing))
        for n in range(first, first + count)
    ]


def publish(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    result = run_cli(["publish", "-", "--json"], env, stdin=jsonl(documents))
    assert result.returncode == 0, result.stderr.decode()


def assert_watch_shows(env: dict[str, str], argv: list[str], expected: str) -> None:
    """`argv` redraws until Ctrl-C (SIGINT), then leaves its last table on the screen."""
    command = [sys.executable, "-m", "workers.cli.main", *argv]
    wide = {**env, "COLUMNS": "200"}
    watcher = subprocess.Popen(command, env=wide, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(6)  # the interpreter's start, the first read of the topic, a few refreshes
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err.decode()
    assert expected in out.decode(), out.decode()
    assert "Ctrl-C stops" in out.decode()
    refused = run_cli([*argv, "--json"], env)
    assert refused.returncode == 2
    assert b"leave --json out" in refused.stderr


def test_a_breaker_alert_fires_and_resolves_in_alertmanager(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers,
        topic_prefix,
        tmp_path / "policies",
        {"breakers.yaml": fast_breaker_text(WAIT_MS)},
        GUARDSTREAM_MODE="production",
    )
    with (
        AlertmanagerServer() as alertmanager,
        running_worker(env, tmp_path / "worker"),
        running_forwarder(env, tmp_path / "forwarder", alertmanager.url) as (forwarder, port),
    ):
        publish(env, calls("openai", 0, 5, failing=True, ts_ms=T0_MS))
        [shown] = eventually(
            "the alert in Alertmanager", lambda: alertmanager.alerts(vendor="openai")
        )
        assert shown["labels"]["alertname"] == "breaker_open"
        assert shown["labels"]["severity"] == "critical"
        assert shown["labels"]["tool"] == "chat"
        assert shown["status"]["state"] == "active"
        assert "openai/chat" in shown["annotations"]["summary"]
        assert_watch_shows(env, ["breakers", "--watch", "--interval", "0.5"], "openai/chat")

        opened_ms = T0_MS + 4
        publish(env, [{"type": "clock", "ts": rfc3339_ms(opened_ms + WAIT_MS + 1)}])
        publish(env, calls("openai", 100, 2, failing=False, ts_ms=opened_ms + WAIT_MS + 10))
        eventually("resolved in Alertmanager", lambda: not alertmanager.alerts(vendor="openai"))
        delivered = eventually(
            "two deliveries counted", lambda: total(scrape(port), f"{ALERTS_DELIVERED}_total") >= 2
        )
        assert delivered
        assert forwarder.alive
