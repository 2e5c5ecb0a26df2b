"""What the end-to-end tests do around a CLI scenario: an environment whose worker runs a
directory of policy files (with the topics created), JSON lines to publish, and a topic read
back from its beginning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from tests.support.worker_process import cli_env, run_cli


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
