"""A throwaway Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback
port, for tests and `make demo`: the real v2 API the alert forwarder posts to.

Clustering is off (`--cluster.listen-address=`): one instance, no gossip port to collide
with. The configuration is guardstream's example (`configs/alertmanager.yml`) unless a test
passes its own; its storage is a temporary directory, so every start is empty.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from devstack.ports import free_port
from devstack.process import DevstackError, ManagedProcess, OneProcessServer

__all__ = ["DEFAULT_CONFIG", "AlertmanagerServer", "AlertmanagerServerError"]

HOST = "127.0.0.1"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "alertmanager.yml"
_POLL_S = 0.1


class AlertmanagerServerError(DevstackError):
    """prometheus-alertmanager is missing, did not start, or died."""


def _find_binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path is not None:
            return path
    raise AlertmanagerServerError(
        "prometheus-alertmanager is not on PATH; run `make deps` (installs Debian's "
        "prometheus-alertmanager)"
    )


class AlertmanagerServer(OneProcessServer):
    error = AlertmanagerServerError

    def __init__(
        self,
        config: str | None = None,
        port: int | None = None,
        *,
        start_timeout: float = 20.0,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="guardstream-alertmanager-"))
        config_path = self._workdir / "alertmanager.yml"
        config_path.write_text(config if config is not None else DEFAULT_CONFIG.read_text())
        self._process = ManagedProcess(
            f"alertmanager-{self.port}",
            [
                _find_binary(),
                f"--config.file={config_path}",
                f"--storage.path={self._workdir / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self._workdir / "alertmanager.log",
            cwd=self._workdir,
        )
        self._remove_when_collected(self._workdir)

    def __repr__(self) -> str:
        return f"AlertmanagerServer(port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts` (active, silenced, inhibited and unprocessed alike), filtered
        by label equality."""
        query = "&".join(f"filter={name}%3D%22{value}%22" for name, value in filters.items())
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as reply:
            found: list[dict[str, Any]] = orjson.loads(reply.read())
        return found

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self._ready():
            if not self._process.alive:
                raise AlertmanagerServerError(
                    f"alertmanager exited (code {self._process.returncode}):\n{self.log_tail(40)}"
                )
            if time.monotonic() > deadline:
                raise AlertmanagerServerError(
                    f"alertmanager not ready within {self.start_timeout:.0f} s:\n"
                    f"{self.log_tail(40)}"
                )
            time.sleep(_POLL_S)
