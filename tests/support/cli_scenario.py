"""What the end-to-end tests do around a CLI scenario: policy files, an environment whose
worker runs a directory of them (with the topics created), JSON lines to publish, and a topic
read back from its beginning."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from devstack.process import ManagedProcess
from devstack.redis import RedisServer
from tests.support.worker_process import (
    WorkerProcess,
    cli_env,
    run_cli,
    running_projector,
    running_worker,
)


def team_budget_text(
    team: str, limit_usd: int, notify_at_pct: Iterable[int], period: str = "daily"
) -> str:
    """A budgets file: `team`'s budget (bud.team.<team>) over `period`, notifying at each
    percent."""
    thresholds = [{"percent": pct, "action": "notify"} for pct in notify_at_pct]
    budget = {"scope": {"team": team}, "period": period, "limit_usd": limit_usd}
    spec = {"budgets": {f"bud.team.{team}": {**budget, "thresholds": thresholds}}}
    return yaml.safe_dump(spec, sort_keys=False)


def fast_breaker_text(wait_in_open_ms: int) -> str:
    """A breakers file: one breaker per vendor/tool that opens on 5 failures of its last 20
    calls (503, 500, timeout), waits `wait_in_open_ms`, closes after 2 good trial calls."""
    return f"""
key: vendor/tool
breakers:
  fast:
    failure_threshold: 5
    minimum_number_of_calls: 5
    sliding_window_type: count
    sliding_window_size: 20
    wait_in_open_ms: {wait_in_open_ms}
    permitted_calls_in_half_open: 3
    success_threshold: 2
    error_types: ["500", "503", timeout]
    fallback_action: use_cache
default: fast
"""


def availability_slo_text(target: float) -> str:
    """An SLOs file: slo.availability, `target` over 7 days per vendor and tool, from 5 events."""
    slo = {
        "sli": {"kind": "availability"},
        "target": target,
        "period": "7d",
        "group_by": ["vendor", "tool"],
        "min_events": 5,
    }
    return yaml.safe_dump({"slos": {"slo.availability": slo}}, sort_keys=False)


def write_policy_dir(directory: Path, files: Mapping[str, str]) -> Path:
    """`directory`, created, holding `files` (file name -> text)."""
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def scenario_env(
    bootstrap: str,
    prefix: str,
    policy_dir: Path,
    files: Mapping[str, str],
    *,
    clock_interval_s: str = "0",
    **extra: str,
) -> dict[str, str]:
    """A CLI environment whose worker runs the policy `files`, written to `policy_dir`, plus
    `extra` variables; the topics are created. No wall-clock ticks by default: the scenario's
    own clock events are then the only way time passes."""
    write_policy_dir(policy_dir, files)
    env = cli_env(
        bootstrap,
        prefix,
        GUARDSTREAM_POLICY_DIR=str(policy_dir),
        GUARDSTREAM_CLOCK_INTERVAL_S=clock_interval_s,
        **extra,
    )
    created = run_cli(["topics", "create"], env)
    assert created.returncode == 0, created.stderr.decode()
    return env


def jsonl(documents: Iterable[dict[str, Any]]) -> bytes:
    """`documents` as JSON lines, what `guardstream publish -` reads."""
    return b"".join(orjson.dumps(document) + b"\n" for document in documents)


def read_topic(env: dict[str, str], topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` (catalog name) so far, decoded: `guardstream tail`."""
    result = run_cli(
        ["tail", topic, "--json", "--from-beginning", "--idle-timeout", "3"], env, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def export_when_settled(env: dict[str, str], path: Path, timeout_s: float = 90) -> Path:
    """`audit export` until two exports a few seconds apart hold the same records (the
    worker has processed everything and committed it)."""
    deadline = time.monotonic() + timeout_s
    previous = -1
    while True:
        exported = run_cli(["audit", "export", str(path)], env, timeout=120)
        assert exported.returncode == 0, exported.stderr.decode()
        count = len(path.read_bytes().splitlines())
        if count == previous and count > 0:
            return path
        assert time.monotonic() < deadline, f"the audit trail did not settle ({count} records)"
        previous = count
        time.sleep(3)


@dataclass
class LiveState:
    """A redis-server of the test's own, and a worker and `guardstream project` using it."""

    env: dict[str, str]
    redis: RedisServer
    worker: WorkerProcess
    projector: ManagedProcess


@contextmanager
def live_state(
    bootstrap: str, prefix: str, tmp_path: Path, files: Mapping[str, str], **extra: str
) -> Iterator[LiveState]:
    """The worker running the policy `files` (see `scenario_env`, `extra` passed on) and the
    projector keeping its state in a fresh redis-server, as a gateway deployment runs them."""
    with RedisServer() as redis_server:
        env = scenario_env(
            bootstrap,
            prefix,
            tmp_path / "policies",
            files,
            GUARDSTREAM_REDIS_URL=redis_server.url,
            **extra,
        )
        with (
            running_worker(env, tmp_path / "worker") as worker,
            running_projector(env, tmp_path / "projector") as projector,
        ):
            yield LiveState(env, redis_server, worker, projector)


def eventually(what: str, check: Callable[[], Any], timeout_s: float = 90) -> Any:
    """`check()` every 0.3 s until it returns something true, which is returned; fails the
    test naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.3)
    return value
