"""The loop closed as a user runs it: calls to a failing vendor, reported to Kafka, open the
breaker in the worker; the projector puts that in Redis; the gateway's next checks are refused.
Once with the example gateway (`examples/gateway.py`), once with the simulator behind the
gateway (`guardstream simulate --gateway`, what `make demo` runs)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.calls import call_document
from tests.support.cli_scenario import fast_breaker_text, jsonl, live_state, read_topic
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


def test_data_classes_are_refused_to_vendors_outside_their_groups_and_bypasses_audited(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    vendors = (Path(__file__).resolve().parents[2] / "examples/policies/vendors.yaml").read_text()
    files = {**BREAKERS, "vendors.yaml": vendors}
    with live_state(bootstrap_servers, topic_prefix, tmp_path, files) as live:

        def gateway(*argv: str) -> list[str]:
            ran = subprocess.run(
                [sys.executable, "-m", "examples.gateway", "--interval", "0", *argv],
                env=live.env,
                capture_output=True,
                timeout=180,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr.decode()
            return ran.stdout.decode().splitlines()[:-1]  # the last line counts outcomes

        refused = gateway("--calls", "3", "--vendor", "openai", "--data-class", "phi")
        assert len(refused) == 3
        # Denied whatever Redis says (the data rule needs no state), with no cached fallback.
        assert all(line.startswith("deny: return_error (") for line in refused), refused
        assert all("class.phi may not go to vendor 'openai'" in line for line in refused)
        allowed = gateway("--calls", "2", "--vendor", "azure-openai", "--data-class", "phi")
        assert allowed == ["called: ok", "called: ok"]
        # A producer that does not ask: the call is made, and the worker audits the breach.
        bypass = call_document("bypass-1", rfc3339_ms(1_795_000_000_000), vendor="openai")
        bypass["data_classification"] = "phi"
        published = run_cli(["publish", "-"], live.env, stdin=jsonl([bypass]))
        assert published.returncode == 0, published.stderr.decode()
        risks: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not risks:
            assert time.monotonic() < deadline, "no aud.risk.triggered record"
            audit = read_topic(live.env, "audit")
            risks = [r for r in audit if r["event_type"] == "aud.risk.triggered"]
    (risk,) = risks
    assert risk["source"]["event_id"] == "bypass-1"
    assert risk["payload"]["declared_classes"] == ["phi"]
    assert risk["payload"]["breaches"][0]["data_class"] == "class.phi"
