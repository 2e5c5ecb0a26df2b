"""`guardstream replay --input` under small key caps (issue 11): unique tool names and users
past the caps raise one `cardinality_limit` alert per kind of state, state stays at the cap,
and the same input replays to the same decisions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.worker_process import cli_env, run_cli

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
CAP = 5
CAPS = {f"GUARDSTREAM_MAX_{kind}_KEYS": str(CAP) for kind in ("BREAKER", "BUDGET", "SLO")}
T0_S = 1_795_000_000
CAP_LINE = re.compile(
    rf"(?P<kind>\w+): the cap of {CAP} key\(s\) was reached; (?P<held>\d+) held, "
    r"(?P<refused>\d+) refused into the overflow state\(s\), (?P<evicted>\d+) idle evicted"
)


def rfc3339(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, second = divmod(seconds - T0_S, 60)
    return f"2026-11-19T08:{13 + minutes:02d}:{20 + second:02d}.{millis:03d}Z"


@pytest.fixture
def unique_keys(tmp_path: Path) -> Path:
    """200 calls 10 ms apart, each with a new tool and a new research user on openai/gpt-4
    (configs/: a breaker and two SLO trackers per vendor/tool, a budget split by user), then
    clock ticks every 30 s for 7 minutes with no traffic."""
    start_ms = T0_S * 1000
    lines: list[dict[str, Any]] = [
        {
            "event_id": f"e{n}",
            "ts": rfc3339(start_ms + n * 10),
            "vendor": "openai",
            "tool": f"tool-{n}",
            "model": "gpt-4",
            "status": "success",
            "duration_ms": 120,
            "cost_usd": "0.01",
            "team": "research",
            "user": f"user-{n}",
        }
        for n in range(200)
    ]
    lines += [{"type": "clock", "ts": rfc3339(start_ms + s * 1000)} for s in range(30, 421, 30)]
    path = tmp_path / "unique.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def replay(path: Path, **env: str) -> tuple[list[dict[str, Any]], str]:
    args = ["replay", "--input", str(path), "--policy", str(REPO / "configs"), "--json"]
    result = run_cli(args, cli_env("127.0.0.1:1", "cardinality.", **env))
    assert result.returncode == 0, result.stderr.decode()
    return [orjson.loads(line) for line in result.stdout.splitlines()], result.stderr.decode()


def test_unique_keys_past_the_caps_alert_once_per_kind_and_state_stays_capped(
    unique_keys: Path,
) -> None:
    decisions, stderr = replay(unique_keys, **CAPS)
    alerts = [
        (d["kernel"], d["labels"]["state"], d["status"])
        for d in decisions
        if d["type"] == "alert" and d["alert_kind"] == "cardinality_limit"
    ]
    # Once per kind, at the first refused key; and resolved once 5 minutes of event time
    # passed (the clock ticks) without a refused key.
    assert sorted(alerts) == [
        ("breaker", "breakers", "firing"),
        ("breaker", "breakers", "resolved"),
        ("budget", "budgets", "firing"),
        ("budget", "budgets", "resolved"),
        ("slo", "slos", "firing"),
        ("slo", "slos", "resolved"),
    ]
    summary = {
        match["kind"]: (int(match["held"]), int(match["refused"]), int(match["evicted"]))
        for match in CAP_LINE.finditer(stderr)
    }
    assert summary == {
        # Every tool past the fifth refused; the swept breakers' keys are evicted at the end.
        "breakers": (0, 195, CAP),
        "budgets": (CAP, 195, 0),  # users past the fifth
        "slos": (CAP, 2 * 200 - CAP, 0),  # two SLOs grouped by vendor/tool
    }
    # The same input replays to the same decisions.
    again, _ = replay(unique_keys, **CAPS)
    assert again == decisions


def test_below_the_caps_nothing_is_refused(unique_keys: Path) -> None:
    decisions, stderr = replay(unique_keys, GUARDSTREAM_MODE="production")
    assert not [d for d in decisions if d.get("alert_kind") == "cardinality_limit"]
    assert "the cap of" not in stderr
