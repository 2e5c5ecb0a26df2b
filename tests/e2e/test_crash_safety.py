"""Crash safety (DESIGN §10, issue 6): a production-mode worker (exactly once, forensic audit)
killed with SIGKILL at random moments and restarted ends where an uninterrupted run ends: the
audit trail verifies, no audit decision or alert is missing or duplicated, and the final
breaker, budget and SLO states are equal. Once with one worker, once with two workers in one
consumer group of which one is killed (its partitions move to the other and back)."""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.worker_process import WorkerProcess, cli_env, run_cli, running_worker

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
EVENTS = 200_000
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure", "groq", "bedrock"]
KILLS = 5
TICK_EVERY = 3750  # calls: a minute of event time
INPUT_PARTITIONS = 12  # 4 partitions x 3 input topics: `publish` sends a tick to each
EXPECTED_INPUTS = EVENTS + EVENTS // TICK_EVERY * INPUT_PARTITIONS

BUDGETS = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: 300
    thresholds:
      - {percent: 25, action: notify}
      - {percent: 50, action: notify}
      - {percent: 75, action: notify}
      - {percent: 100, action: notify}
"""

SLOS = """
slos:
  slo.availability:
    sli: {kind: availability}
    target: 0.995
    period: 7d
    group_by: [vendor, tool]
    min_events: 5
"""


def workload() -> bytes:
    """200,000 calls over ~55 minutes of event time; each vendor has a bad spell (its
    breaker opens and closes, its SLO pages and resolves); research spends through all four
    thresholds; a clock tick per partition every minute of event time."""
    rng = random.Random(11)
    lines = []
    for n in range(EVENTS):
        ts = T0_MS + n * 16
        vendor = VENDORS[n % len(VENDORS)]
        spell = (n // 20_000) % len(VENDORS) == VENDORS.index(vendor)
        failing = spell and rng.random() < 0.6
        document: dict[str, Any] = {
            "event_id": f"e{n}",
            "ts": rfc3339_ms(ts),
            "vendor": vendor,
            "tool": "chat",
            "status": "error" if failing else "success",
            "error_type": "503" if failing else None,
            "duration_ms": 80,
            "cost_usd": "0.004",
            "team": "research" if n % 3 == 0 else "search",
        }
        lines.append(orjson.dumps(document))
        if n % TICK_EVERY == TICK_EVERY - 1:
            lines.append(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts)}))
    return b"\n".join(lines) + b"\n"


def environment(bootstrap: str, prefix: str, policies: Path) -> dict[str, str]:
    return cli_env(
        bootstrap,
        prefix,
        GUARDSTREAM_MODE="production",
        GUARDSTREAM_POLICY_DIR=str(policies),
        GUARDSTREAM_CLOCK_INTERVAL_S="0",
        GUARDSTREAM_SESSION_TIMEOUT_S="6",
    )


def export_when_settled(
    env: dict[str, str], path: Path, timeout_s: float = 600
) -> list[dict[str, Any]]:
    """The audit trail once it records every input (each call, and each clock tick once per
    input partition) and two exports a few seconds apart are equal (all committed)."""
    deadline = time.monotonic() + timeout_s
    previous: bytes | None = None
    while True:
        exported = run_cli(["audit", "export", str(path)], env, timeout=300)
        assert exported.returncode == 0, exported.stderr.decode()
        content = path.read_bytes()
        inputs = content.count(b'"chain":"input-p')
        if content == previous and inputs >= EXPECTED_INPUTS:
            return [orjson.loads(line) for line in content.splitlines()]
        assert time.monotonic() < deadline, "the audit trail did not settle"
        previous = content
        time.sleep(4)


def outcome(env: dict[str, str], tmp: Path) -> dict[str, Any]:
    trail = export_when_settled(env, tmp / "trail.jsonl")
    verified = run_cli(["audit", "verify", "--input", str(tmp / "trail.jsonl")], env, timeout=300)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    decisions = Counter(
        orjson.dumps(
            {k: v for k, v in record["payload"].items() if k != "event_id"},
            option=orjson.OPT_SORT_KEYS,
        )
        for record in trail
        if not record["chain"].startswith("input-")
    )
    tail = run_cli(
        ["tail", "alerts", "--json", "--from-beginning", "--idle-timeout", "3"], env, timeout=120
    )
    alerts = Counter(
        (a["alert_id"], a["status"]) for a in map(orjson.loads, tail.stdout.splitlines())
    )
    states = {}
    for command in ("breakers", "budgets", "slos"):
        result = run_cli([command, "--json"], env, timeout=120)
        assert result.returncode == 0, result.stderr.decode()
        states[command] = sorted(orjson.loads(result.stdout), key=orjson.dumps)
    inputs = sum(1 for record in trail if record["chain"].startswith("input-"))
    return {"decisions": decisions, "alerts": alerts, "states": states, "inputs": inputs}


def prepared(bootstrap: str, policies: Path) -> dict[str, str]:
    """A fresh set of topics (own prefix, own consumer group) holding the whole workload."""
    env = environment(bootstrap, f"t{uuid.uuid4().hex[:12]}.", policies)
    assert run_cli(["topics", "create"], env).returncode == 0
    published = run_cli(["publish", "-"], env, stdin=workload(), timeout=600)
    assert published.returncode == 0, published.stderr.decode()
    return env


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("policies")
    (directory / "budgets.yaml").write_text(BUDGETS)
    (directory / "slos.yaml").write_text(SLOS)
    return directory


@pytest.fixture(scope="module")
def uninterrupted(
    bootstrap_servers: str, policies: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """What one worker, never interrupted, makes of the workload."""
    env = prepared(bootstrap_servers, policies)
    work = tmp_path_factory.mktemp("uninterrupted")
    with running_worker(env, work / "worker") as process:
        result = outcome(env, work)
        assert process.alive(), process.log_tail()
    assert result["decisions"], "the workload made no decisions"
    return result


def assert_same_outcome(killed: dict[str, Any], uninterrupted: dict[str, Any]) -> None:
    assert killed["inputs"] == uninterrupted["inputs"]  # every input recorded exactly once
    assert killed["decisions"] == uninterrupted["decisions"]  # none missing, none twice
    assert killed["alerts"] == uninterrupted["alerts"]
    assert killed["states"] == uninterrupted["states"]


def kill(worker: WorkerProcess) -> None:
    worker.process.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.timeout(1500)  # two runs of 200,000 events through the forensic pipeline
def test_sigkill_and_restart_five_times_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, policies: Path, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    env = prepared(bootstrap_servers, policies)
    rng = random.Random(5)
    for round_number in range(KILLS):
        with running_worker(env, tmp_path / f"worker-{round_number}") as worker:
            time.sleep(rng.uniform(3.0, 9.0))
            kill(worker)
    with running_worker(env, tmp_path / "worker-final") as worker:
        killed = outcome(env, tmp_path)
        assert worker.alive(), worker.log_tail()
    assert_same_outcome(killed, uninterrupted)


@pytest.mark.timeout(1500)
def test_two_workers_in_one_group_one_killed_repeatedly_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, policies: Path, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    """Two workers share the partitions; one of them is SIGKILLed at a random moment, its
    partitions move to the survivor (after the session timeout), and when it comes back some
    move back (a revocation on the survivor, mid-stream) — five times."""
    env = prepared(bootstrap_servers, policies)
    rng = random.Random(7)
    with ExitStack() as workers:
        pair = [workers.enter_context(running_worker(env, tmp_path / "a-0"))]
        pair.append(workers.enter_context(running_worker(env, tmp_path / "b-0")))
        for round_number in range(1, KILLS + 1):
            time.sleep(rng.uniform(3.0, 9.0))
            victim = rng.randrange(2)
            kill(pair[victim])
            time.sleep(rng.uniform(0.0, 8.0))  # the survivor may take over before the restart
            name = f"{'ab'[victim]}-{round_number}"
            pair[victim] = workers.enter_context(running_worker(env, tmp_path / name))
        killed = outcome(env, tmp_path)
        for worker in pair:
            assert worker.alive(), worker.log_tail()
    assert_same_outcome(killed, uninterrupted)
