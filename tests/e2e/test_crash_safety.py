"""Crash safety (DESIGN §10, issue 6): a production-mode worker (exactly once, forensic audit)
killed with SIGKILL at random moments and restarted ends where an uninterrupted run ends: the
audit trail verifies, no audit decision or alert is missing or duplicated, and the final
breaker, budget and SLO states are equal."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.worker_process import cli_env, run_cli, running_worker

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


def export_when_settled(env: dict[str, str], path: Path, timeout_s: float = 600) -> list[dict]:
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


@pytest.mark.timeout(1500)  # two runs of 200,000 events through the forensic pipeline
@pytest.mark.xfail(
    strict=False,  # some kill timings already pass; CI must not hinge on which
    reason="issue 6 open: inputs are now recorded exactly once across kills (re-consumed "
    "offsets already in the forensic trail are skipped), but breakers rebuilt from the trail "
    "can still decide differently after a restart (measured: 12 of 146 decision records "
    "differ, breaker transitions with other evidence)",
)
def test_sigkill_and_restart_five_times_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "budgets.yaml").write_text(BUDGETS)
    (policies / "slos.yaml").write_text(SLOS)
    lines = workload()
    results = {}
    for run_name in ("uninterrupted", "killed"):
        env = environment(bootstrap_servers, f"{topic_prefix}{run_name}.", policies)
        assert run_cli(["topics", "create"], env).returncode == 0
        published = run_cli(["publish", "-"], env, stdin=lines, timeout=600)
        assert published.returncode == 0, published.stderr.decode()
        work = tmp_path / run_name
        if run_name == "killed":
            rng = random.Random(5)
            for kill in range(KILLS):
                with running_worker(env, work / f"worker-{kill}") as process:
                    time.sleep(rng.uniform(3.0, 9.0))
                    process.process.send_signal(signal.SIGKILL)
                    deadline = time.monotonic() + 30
                    while process.alive() and time.monotonic() < deadline:
                        time.sleep(0.1)
        with running_worker(env, work / "worker-final") as process:
            results[run_name] = outcome(env, work)
            assert process.alive(), process.log_tail()

    uninterrupted, killed = results["uninterrupted"], results["killed"]
    assert uninterrupted["decisions"], "the workload made no decisions"
    assert killed["inputs"] == uninterrupted["inputs"]  # every input recorded exactly once
    assert killed["decisions"] == uninterrupted["decisions"]  # none missing, none twice
    assert killed["alerts"] == uninterrupted["alerts"]
    assert killed["states"] == uninterrupted["states"]
