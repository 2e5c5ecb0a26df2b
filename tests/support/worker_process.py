"""Run ``guardstream`` as a user would: a real subprocess against the fixtures' broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.ports import free_port
from devstack.process import ManagedProcess
from workers.metrics_scrape import scrape, total


def cli_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GUARDSTREAM_KAFKA_BOOTSTRAP=bootstrap,
        GUARDSTREAM_TOPIC_PREFIX=prefix,
        GUARDSTREAM_APP_ID=f"{prefix}worker",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], *, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class WorkerProcess:
    process: ManagedProcess
    web_port: int
    log_path: Path

    def alive(self) -> bool:
        return self.process.alive

    def metrics(self) -> dict[str, float]:
        return scrape(self.web_port)

    def total(self, metric: str) -> float:
        return total(self.metrics(), metric)

    def wait_for(self, metric: str, expected: float, timeout_s: float = 90) -> float:
        deadline = time.monotonic() + timeout_s
        value = 0.0
        while time.monotonic() < deadline:
            assert self.alive(), f"worker exited; log:\n{self.log_tail()}"
            value = self.total(metric)
            if value >= expected:
                return value
            time.sleep(0.25)
        return value

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_worker(env: Mapping[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    web_port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / "worker.log"
    worker_env = dict(env, GUARDSTREAM_DATA_DIR=str(tmp_path / "data"))
    argv = [sys.executable, "-m", "workers.cli.main", "worker", "--web-port", str(web_port)]
    process = ManagedProcess("worker", argv, log_path, env=worker_env)
    process.start()
    worker = WorkerProcess(process, web_port, log_path)
    try:
        _wait_healthy(worker)
        yield worker
    finally:
        process.stop(timeout=30)


def _wait_healthy(worker: WorkerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited early:\n{worker.log_tail()}")
        try:
            url = f"http://127.0.0.1:{worker.web_port}/health"
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"worker not healthy after {timeout_s}s:\n{worker.log_tail()}")


def cascade_process(env: Mapping[str, str], log_path: Path) -> ManagedProcess:
    """`guardstream cascade` as a user runs it (not started)."""
    argv = [sys.executable, "-m", "workers.cli.main", "cascade"]
    return ManagedProcess("cascade", argv, log_path, env=dict(env))


@contextmanager
def running_projector(env: Mapping[str, str], tmp_path: Path) -> Iterator[ManagedProcess]:
    """`guardstream project` as a user runs it, metrics on a free port."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "workers.cli.main",
        "project",
        "--metrics-port",
        str(free_port()),
    ]
    process = ManagedProcess("projector", argv, tmp_path / "projector.log", env=dict(env))
    process.start()
    try:
        yield process
    finally:
        process.stop(timeout=30)


@contextmanager
def running_forwarder(
    env: Mapping[str, str], tmp_path: Path, alertmanager_url: str
) -> Iterator[tuple[ManagedProcess, int]]:
    """`guardstream alerts forward` as a user runs it; yields it and its metrics port."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "workers.cli.main", "alerts", "forward"]
    argv += ["--alertmanager", alertmanager_url, "--metrics-port", str(port)]
    process = ManagedProcess("forwarder", argv, tmp_path / "forwarder.log", env=dict(env))
    process.start()
    try:
        yield process, port
    finally:
        process.stop(timeout=30)
