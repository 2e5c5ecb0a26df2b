"""The worker's status page in a real browser (issue 14): headless Chromium (Debian's) loads
`/status` of a worker holding an open breaker and a halted budget, runs the page's script, and
the DOM it leaves shows the open breaker's tile, the budget's bar with `halt`, and both in
"needs attention". The screenshot is kept as a test artefact (`test-artifacts/`). The same
worker's /metrics passes `promtool check metrics`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import fast_breaker_text, jsonl, scenario_env
from tests.support.worker_process import run_cli, running_worker

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GUARDSTREAM_TEST_ARTIFACTS", ROOT / "test-artifacts"))
T0_MS = 1_794_960_000_000
BUDGETS = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: 10
    hard: true
    thresholds:
      - {percent: 80, action: throttle}
      - {percent: 100, action: halt}
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `make deps` installs Debian's"
    return path


def browse(url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """Headless Chromium on `url`, its virtual clock run long enough for the page's first
    poll of /status.json to be drawn."""
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    argv += ["--window-size=1280,900", "--virtual-time-budget=8000", *extra, url]
    return subprocess.run(argv, capture_output=True, timeout=120, check=False)


def status(web_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/status.json", timeout=5) as r:
        document: dict[str, Any] = orjson.loads(r.read())
    return document


def assert_metrics_follow_prometheus_conventions(web_port: int) -> None:
    """The worker's /metrics passes `promtool check metrics` (Debian's prometheus package)
    and covers the decision surfaces this scenario touched."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as r:
        text = r.read()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: `make deps` installs Debian's prometheus"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    exposition = text.decode()
    assert (
        'guardstream_alerts_published_total{kind="breaker_open",severity="critical",'
        'status="firing"} 1.0' in exposition
    )
    assert 'guardstream_batch_seconds_bucket{le="+Inf"}' in exposition
    assert 'guardstream_breaker_state{key="openai/chat",state="open"} 1.0' in exposition
    assert (
        'guardstream_budget_action{action="halt",budget="bud.team.research",'
        'key="bud.team.research"} 1.0' in exposition
    )
    assert "guardstream_commit_seconds_count" in exposition


def test_the_status_page_shows_an_open_breaker_and_a_halted_budget_in_a_browser(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers,
        topic_prefix,
        tmp_path / "policies",
        {"breakers.yaml": fast_breaker_text(600_000), "budgets.yaml": BUDGETS},
    )
    failing = [
        call_document(f"f{n}", rfc3339_ms(T0_MS + n), vendor="openai", **outcome(True))
        for n in range(5)
    ]
    spend = [
        {
            **call_document(
                f"s{n}", rfc3339_ms(T0_MS + 100 + n), vendor="anthropic", **outcome(False)
            ),
            "cost_usd": "4",
            "team": "research",
        }
        for n in range(3)
    ]
    tick = {"type": "clock", "ts": rfc3339_ms(T0_MS + 60_000)}
    with running_worker(env, tmp_path / "worker") as worker:
        published = run_cli(["publish", "-", "--json"], env, stdin=jsonl([*failing, *spend, tick]))
        assert published.returncode == 0, published.stderr.decode()
        deadline = time.monotonic() + 90
        while True:
            document = status(worker.web_port)
            kinds = {(a["kind"], a["what"]) for a in document["attention"]}
            if {("breaker", "open"), ("budget", "halt")} <= kinds:
                break
            assert time.monotonic() < deadline, document
            time.sleep(0.5)

        url = f"http://127.0.0.1:{worker.web_port}/status"
        dom = browse(url, "--dump-dom")
        assert dom.returncode == 0, dom.stderr.decode()[-2000:]
        page = dom.stdout.decode()
        assert 'class="tile open" data-key="openai/chat"' in page
        assert 'data-budget="bud.team.research"' in page
        assert '<span class="badge halt">halt</span>' in page
        assert 'data-kind="breaker"' in page
        assert 'data-kind="budget"' in page
        assert "events accepted" in page  # the header the script fills in

        assert_metrics_follow_prometheus_conventions(worker.web_port)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "status-page.png"
        shot = browse(url, f"--screenshot={screenshot}")
        assert shot.returncode == 0, shot.stderr.decode()[-2000:]
        assert screenshot.stat().st_size > 10_000
