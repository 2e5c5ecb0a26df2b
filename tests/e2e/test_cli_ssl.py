"""A CA file that cannot be loaded (GUARDSTREAM_KAFKA_SSL_CAFILE with SSL / SASL_SSL) is a
configuration error naming the variable, exit 2, for every command that connects to Kafka:
never a traceback from inside the first client a command builds.

No broker is needed: the TLS context is built before any connection is tried. Every command
runs through the console script's `main` in process (a subprocess each would cost ~2 s of
interpreter start); a few run as real subprocesses, as a user runs them.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from tests.support.worker_process import run_cli
from workers.cli.main import main

pytestmark = [pytest.mark.e2e]

CLOCK_TICK = b'{"type": "clock", "ts": 1795000000000}\n'

# Every command that talks to Kafka, with the arguments it needs to get that far.
CONNECTING_COMMANDS = [
    ["worker", "--web-port", "0"],
    ["topics", "create"],
    ["topics", "describe"],
    ["publish", "-"],
    ["tail", "alerts", "--max", "1"],
    ["simulate", "--count", "1"],
    ["replay", "--source", "topics", "--from", "0", "--to", "1"],
    ["breakers"],
    ["breakers", "override", "openai", "chat", "reset"],
    ["budgets"],
    ["slos"],
    ["audit", "verify"],
    ["audit", "export", "{tmp}/trail.jsonl"],
]


def ssl_env(protocol: str, cafile: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSTREAM_")}
    env.update(
        # A port nothing listens on: if a command got past the TLS context, it would fail
        # differently (and slowly), which the assertions below would show.
        GUARDSTREAM_KAFKA_BOOTSTRAP="127.0.0.1:9",
        GUARDSTREAM_KAFKA_SECURITY_PROTOCOL=protocol,
        GUARDSTREAM_KAFKA_SASL_USERNAME="guardstream",
        GUARDSTREAM_KAFKA_SASL_PASSWORD="not-used",
        GUARDSTREAM_KAFKA_SSL_CAFILE=cafile,
    )
    return env


@pytest.mark.parametrize("command", CONNECTING_COMMANDS, ids=" ".join)
def test_every_connecting_command_names_a_missing_ca_file_and_exits_2(
    tmp_path: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setattr(os, "environ", ssl_env("SASL_SSL", str(missing)))
    monkeypatch.setattr(sys, "argv", ["guardstream", *[a.format(tmp=tmp_path) for a in command]])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CLOCK_TICK)))
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2, stderr
    assert f"GUARDSTREAM_KAFKA_SSL_CAFILE={missing}" in stderr
    assert "No such file or directory" in stderr


@pytest.mark.parametrize(
    "command",
    [
        ["worker", "--web-port", "0"],
        ["audit", "verify"],
        # Builds its connection options before its coroutine runs: the console script's own
        # handler turns the error into the exit code.
        ["replay", "--source", "topics", "--from", "0", "--to", "1"],
    ],
    ids=" ".join,
)
def test_as_a_subprocess_no_traceback_only_the_variable_and_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = run_cli(command, ssl_env("SASL_SSL", str(missing)), timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert f"GUARDSTREAM_KAFKA_SSL_CAFILE={missing}" in stderr
    assert "No such file or directory" in stderr
