"""The loop closed as a user runs it: calls to a failing vendor, reported to Kafka, open the
breaker in the worker; the projector puts that in Redis; the gateway's next checks are refused.
Once with the example gateway (`examples/gateway.py`), once with the simulator behind the
gateway (`guardstream simulate --gateway`, what `make demo` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.cli_scenario import fast_breaker_text, live_state
from tests.support.worker_process import run_cli

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

CALLS = 80
BREAKERS = {"breakers.yaml": fast_breaker_text(wait_in_open_ms=600_000)}
"""Open for ten minutes: once refused, a vendor stays refused for the whole test."""


def test_a_failing_vendor_s_calls_stop_and_take_the_fallback(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    with live_state(
        bootstrap_servers, topic_prefix, tmp_path, BREAKERS, clock_interval_s="1"
    ) as live:
        argv = ["--calls", str(CALLS), "--failure-rate", "1", "--interval", "0.1"]
        gateway = subprocess.run(
            [sys.executable, "-m", "examples.gateway", *argv],
            env=live.env,
            capture_output=True,
            timeout=180,
            check=False,
        )
    assert gateway.returncode == 0, gateway.stderr.decode()
    outcomes = gateway.stdout.decode().splitlines()[:CALLS]
    called = [n for n, line in enumerate(outcomes) if line.startswith("called: 503")]
    refused = [n for n, line in enumerate(outcomes) if line.startswith("deny: use_cache")]
    assert len(called) >= 5, outcomes  # the breaker's minimum number of calls
    assert refused, outcomes
    # Once refused, refused for good (the breaker waits ten minutes): nothing reaches the
    # vendor any more, and every refusal names the open breaker.
    assert refused == list(range(refused[0], CALLS)), outcomes
    assert all("open" in outcomes[n] for n in refused)


def test_the_simulator_behind_the_gateway_stops_calling_a_vendor_in_an_outage(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    with live_state(
        bootstrap_servers, topic_prefix, tmp_path, BREAKERS, clock_interval_s="1"
    ) as live:
        argv = ["--gateway", "--no-chaos", "--outage", "openai:0:600", "--rate", "100"]
        simulated = run_cli(
            ["simulate", *argv, "--duration", "15", "--json"], live.env, timeout=120
        )
    assert simulated.returncode == 0, simulated.stderr.decode()
    outcomes = orjson.loads(simulated.stdout)["outcomes"]
    assert outcomes.get("outage", 0) >= 5  # openai's calls fail until its breakers open
    assert outcomes.get("deny:breaker_open", 0) > 0, outcomes  # then they are not made
    assert outcomes.get("success", 0) > 0  # the other vendors' calls go on
