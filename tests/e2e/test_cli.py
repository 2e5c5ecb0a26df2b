"""`guardstream` run as a user runs it: a subprocess against the fixtures' real broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.worker_process import cli_env, run_cli
from topics.catalog import TopicName

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

VALID = {
    "ts": "2026-11-21T10:00:00Z",
    "vendor": "openai",
    "tool": "chat",
    "status": "success",
    "duration_ms": 840,
    "cost_usd": "0.0123",
    "team": "research",
}


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["worker"],
        ["topics"],
        ["topics", "create"],
        ["topics", "describe"],
        ["publish"],
        ["tail"],
        ["simulate"],
        ["replay"],
        ["breakers"],
        ["breakers", "override"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli([*command, "--help"], cli_env("127.0.0.1:1", "help."))
    assert result.returncode == 0, result.stderr
    assert b"Usage:" in result.stdout


def test_topics_create_is_idempotent(bootstrap_servers: str, topic_prefix: str) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    first = run_cli(["topics", "create", "--json"], env)
    second = run_cli(["topics", "create", "--json"], env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    first_actions = {t["name"]: t["action"] for t in orjson.loads(first.stdout)["topics"]}
    second_actions = {t["name"]: t["action"] for t in orjson.loads(second.stdout)["topics"]}
    assert len(first_actions) == len(TopicName)  # DESIGN §3's eleven + the internal ones
    assert set(first_actions.values()) == {"created"}
    assert set(second_actions.values()) == {"ok"}
    described = run_cli(["topics", "describe", "--json"], env)
    assert described.returncode == 0, described.stderr


async def test_conflicting_topic_is_reported_and_the_worker_refuses_to_start(
    bootstrap_servers: str, topic_prefix: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    f"{topic_prefix}alerts",
                    num_partitions=2,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()
    env = cli_env(bootstrap_servers, topic_prefix)

    created = run_cli(["topics", "create", "--json"], env)
    assert created.returncode == 3
    alerts = next(
        t for t in orjson.loads(created.stdout)["topics"] if t["name"] == f"{topic_prefix}alerts"
    )
    assert alerts["action"] == "mismatch"
    assert any("2 partitions, catalog says 4" in p for p in alerts["problems"])
    assert any("cleanup.policy='compact'" in p for p in alerts["problems"])

    worker = run_cli(["worker", "--web-port", "0"], env, timeout=60)
    assert worker.returncode == 3
    assert b"refusing to start" in worker.stderr
    assert f"{topic_prefix}alerts".encode() in worker.stderr


def test_publish_validates_every_line(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    assert run_cli(["topics", "create"], env).returncode == 0
    lines = [
        {**VALID, "event_id": "e1"},
        {**VALID, "event_id": "e2", "cost_usd": -1},
        {**VALID, "event_id": "e3"},
        {
            "type": "latency",
            "event_id": "e4",
            "ts": 1795000000000,
            "vendor": "openai",
            "tool": "chat",
            "latency_ms": 80,
            "kind": "ttfb",
        },
    ]
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")

    strict = run_cli(["publish", str(source), "--json"], env)
    assert strict.returncode == 4
    assert b"line 2" in strict.stderr
    assert b"cost_usd" in strict.stderr
    assert orjson.loads(strict.stdout)["published"] == 1  # stopped at the bad line

    lenient = run_cli(["publish", str(source), "--skip-invalid", "--json"], env)
    assert lenient.returncode == 4
    summary = orjson.loads(lenient.stdout)
    assert summary["published"] == 3
    assert summary["by_topic"] == {
        f"{topic_prefix}tool-invocations": 2,
        f"{topic_prefix}latency-events": 1,
    }

    tailed = run_cli(
        [
            "tail",
            "tool-invocations",
            "--from-beginning",
            "--json",
            "--max",
            "3",
            "--idle-timeout",
            "10",
        ],
        env,
    )
    assert tailed.returncode == 0, tailed.stderr
    ids = [orjson.loads(line)["event_id"] for line in tailed.stdout.splitlines()]
    assert ids == ["e1", "e1", "e3"]


def test_publish_from_stdin(bootstrap_servers: str, topic_prefix: str) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    assert run_cli(["topics", "create"], env).returncode == 0
    result = run_cli(
        ["publish", "-", "--json"], env, stdin=orjson.dumps({**VALID, "event_id": "s1"})
    )
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["published"] == 1


def test_simulate_sends_the_requested_count(bootstrap_servers: str, topic_prefix: str) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    assert run_cli(["topics", "create"], env).returncode == 0
    result = run_cli(["simulate", "--rate", "0", "--count", "500", "--seed", "3", "--json"], env)
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["sent"] == 500
    assert set(summary["outcomes"]) <= {
        "success",
        "timeout",
        "api_error",
        "rate_limit",
        "cost",
        "latency",
        "corrupt",
        "duplicate",
        "outage",
    }


def test_bad_simulator_flag_is_a_usage_error(bootstrap_servers: str, topic_prefix: str) -> None:
    result = run_cli(
        ["simulate", "--outage", "openai:soon"], cli_env(bootstrap_servers, topic_prefix)
    )
    assert result.returncode == 2
    assert b"VENDOR:START_S:DURATION_S" in result.stderr
