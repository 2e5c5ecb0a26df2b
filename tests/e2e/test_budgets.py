"""Budgets end to end: the CLI worker on the real broker, routed across partitions.

A team's spend spike walks its budget through 50/80/95/100 % with one alert each, budget-state
turns throttle then halt, the tripwire sends a downgrade ControlCommand; another team's budget
is untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.cli_scenario import jsonl, read_topic, scenario_env
from tests.support.worker_process import run_cli, running_worker
from workers.metrics import BUDGET_DECISIONS

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
MIN = 60_000
DECISIONS = f"{BUDGET_DECISIONS}_total"

POLICY = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: 100
    hard: true
    thresholds:
      - {percent: 50, action: notify}
      - {percent: 80, action: notify}
      - {percent: 95, action: throttle}
      - {percent: 100, action: halt}
  bud.team.search:
    scope: {team: search}
    period: daily
    limit_usd: 100
    hard: true
tripwires:
  bud.team.research:
    breach_threshold_pct: 12
    consecutive_breach_limit: 2
    recovery_threshold_pct: 8
    check_interval_ms: 900000
    downgrade_parameters: {FUSION_MODE: baseline_only}
"""


def spend(n: int, team: str, usd: str, vendor: str) -> dict[str, Any]:
    return {
        "event_id": f"{team}-{n}",
        "ts": rfc3339_ms(T0_MS + n * 8 * MIN),  # 8 minutes apart: two per tripwire interval
        "vendor": vendor,  # different vendors: the team's spend comes from several partitions
        "tool": "chat",
        "status": "success",
        "duration_ms": 100,
        "cost_usd": usd,
        "team": team,
    }


def test_a_team_spend_spike_throttles_then_halts_its_budget_and_trips_the_wire(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers, topic_prefix, tmp_path / "policies", {"budgets.yaml": POLICY}
    )
    amounts = ["10"] * 9 + ["5", "5", "10"]  # 90, 95, 100, 110 % of $100
    vendors = ["openai", "anthropic", "mistral", "cohere"]
    research = [spend(n, "research", usd, vendors[n % 4]) for n, usd in enumerate(amounts)]
    search = [spend(n, "search", "1", vendors[n % 4]) for n in range(3)]
    # Budgets count spend in event-time order under the input partitions' low watermark; with
    # the worker's own clock off, a tick (sent to every input partition) moves the idle ones.
    tick = {"type": "clock", "ts": rfc3339_ms(T0_MS + 120 * MIN)}
    lines = jsonl([*research, *search, tick])
    with running_worker(env, tmp_path / "worker") as process:
        published = run_cli(["publish", "-"], env, stdin=lines)
        assert published.returncode == 0, published.stderr.decode()
        # 4 threshold alerts, 2 action changes, the tripwire's 2 commands and 2 alert changes.
        assert process.wait_for(DECISIONS, 10, timeout_s=90) >= 10, process.log_tail()

    alerts = [a for a in read_topic(env, "alerts") if a["kind"] == "budget_threshold"]
    assert sorted(a["labels"]["threshold_percent"] for a in alerts) == ["100", "50", "80", "95"]
    assert {a["labels"]["budget_id"] for a in alerts} == {"bud.team.research"}
    # The spend stops after 88 minutes: the next checked interval is normal and the wire
    # recovers (consecutive_normal_operations 1, no minimum time since the last breach).
    downgrade, restore = read_topic(env, "control")
    assert (downgrade["kind"], downgrade["target"]) == ("downgrade", "team:research")
    assert downgrade["parameters"] == {"FUSION_MODE": "baseline_only"}
    assert (restore["kind"], restore["parameters"]) == ("restore", {"FUSION_MODE": "baseline_only"})

    result = run_cli(["budgets", "--json"], env, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    states = {state["budget_id"]: state for state in orjson.loads(result.stdout)}
    research_state = states["bud.team.research"]
    assert (research_state["action"], research_state["decided_by"]) == ("halt", "threshold:100")
    assert research_state["spent_usd"] == "110"
    assert research_state["thresholds_crossed"] == [50, 80, 95, 100]
    assert (states["bud.team.search"]["action"], states["bud.team.search"]["spent_usd"]) == (
        "allow",
        "3",
    )
    audit = read_topic(env, "audit")
    exceeded = [r for r in audit if r["event_type"] == "aud.budget.exceeded"]
    assert exceeded
    assert {"budget_id", "limit", "actual", "action_taken"} <= exceeded[-1]["payload"].keys()


ANOMALY_POLICY = """
budgets:
  bud.team.ml:
    scope: {team: ml}
    period: monthly
    limit_usd: 1000
    thresholds: []
    anomaly: {detection_window_ms: 3600000, factor: 2.0, baseline_windows: 3}
    rapid_consumption: {fraction: 0.05, window_ms: 900000}
"""


def test_a_burst_after_steady_spend_raises_the_anomaly_and_rapid_consumption_alerts(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers, topic_prefix, tmp_path / "policies", {"budgets.yaml": ANOMALY_POLICY}
    )
    # Three hours of $1 every 10 minutes (the baseline: $6 an hour), then $60 in 10 minutes.
    steady = [
        {**spend(0, "ml", "1", "openai"), "event_id": f"steady-{n}",
         "ts": rfc3339_ms(T0_MS + n * 10 * MIN)}
        for n in range(18)
    ]  # fmt: skip
    burst = [
        {**spend(0, "ml", "6", "anthropic"), "event_id": f"burst-{n}",
         "ts": rfc3339_ms(T0_MS + 180 * MIN + n * MIN)}
        for n in range(10)
    ]  # fmt: skip
    tick = {"type": "clock", "ts": rfc3339_ms(T0_MS + 250 * MIN)}  # closes the burst's hour
    lines = jsonl([*steady, *burst, tick])
    with running_worker(env, tmp_path / "worker") as process:
        published = run_cli(["publish", "-"], env, stdin=lines)
        assert published.returncode == 0, published.stderr.decode()
        # rapid consumption fires (and resolves once the 15 minutes pass); the anomaly fires.
        assert process.wait_for(DECISIONS, 3, timeout_s=90) >= 3, process.log_tail()
    alerts = read_topic(env, "alerts")
    kinds = [(a["kind"], a["status"]) for a in alerts]
    assert ("budget_rapid_consumption", "firing") in kinds
    assert ("budget_rapid_consumption", "resolved") in kinds
    assert ("budget_anomaly", "firing") in kinds
    assert {a["labels"]["budget_id"] for a in alerts} == {"bud.team.ml"}
