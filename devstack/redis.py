"""A throwaway ``redis-server`` on a free loopback port, for tests and ``make demo``.

No persistence: the harness exists to test what happens when state is *lost* (outages,
restarts), so ``restart()`` deliberately comes back empty on the same port.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import redis

from devstack.ports import free_port
from devstack.process import DevstackError, ManagedProcess, OneProcessServer

__all__ = ["RedisServer", "RedisServerError"]

HOST = "127.0.0.1"
_PING_INTERVAL_S = 0.05


class RedisServerError(DevstackError):
    """redis-server is missing, did not start, or died."""


def _find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError(
            "redis-server is not on PATH; run `make deps` (installs Debian's redis-server)"
        )
    return path


def _render_config(port: int, password: str | None, workdir: Path) -> str:
    """redis.conf text; a file (mode 0600) keeps the password out of ``ps`` output."""
    lines = [
        f"port {port}",
        f"bind {HOST}",
        'save ""',
        "appendonly no",
        "daemonize no",
        f"dir {workdir}",
        # Tests must see an outage as an outage, not a half-written snapshot on restart.
        "stop-writes-on-bgsave-error no",
    ]
    if password is not None:
        lines.append(f'requirepass "{password}"')
    return "\n".join(lines) + "\n"


class RedisServer(OneProcessServer):
    """``redis-server`` in its own process group with a temp working directory."""

    error = RedisServerError

    def __init__(
        self, port: int | None = None, password: str | None = None, *, start_timeout: float = 10.0
    ) -> None:
        if password is not None and any(c in password for c in '"\\\n'):
            raise ValueError("password must not contain quotes, backslashes or newlines")
        self.port = port if port is not None else free_port()
        self.password = password
        self.start_timeout = start_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="guardstream-redis-"))
        self._config = self._workdir / "redis.conf"
        self._config.touch(mode=0o600)
        self._config.write_text(_render_config(self.port, password, self._workdir))
        self._process = ManagedProcess(
            f"redis-server-{self.port}",
            [_find_redis_server(), str(self._config)],
            self._workdir / "redis.log",
            cwd=self._workdir,
        )
        self._remove_when_collected(self._workdir)

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port/0``."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port, empty."""
        self.shutdown()
        return self.start()

    def client(self) -> redis.Redis:
        """A sync client for this server (caller closes it)."""
        return redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _answers(self) -> bool:
        """True once *our* process answers: a foreign server on a reused port does not count."""
        client = redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        try:
            info: dict[str, Any] = client.info("server")
            return bool(info.get("process_id") == self._process.pid)
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self._answers():
            if not self._process.alive:
                raise RedisServerError(
                    f"redis-server exited (code {self._process.returncode}) on port "
                    f"{self.port}:\n{self.log_tail(40)}"
                )
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"redis-server did not answer PING within {self.start_timeout:.0f} s:\n"
                    f"{self.log_tail(40)}"
                )
            time.sleep(_PING_INTERVAL_S)
