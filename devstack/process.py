"""Child-process plumbing shared by the Kafka and Redis launchers.

Every server runs in its own session (process group) so that a signal reaches the whole
group and a Ctrl-C in the terminal does not hit the servers before the harness has had a
chance to stop them in order. Three layers make sure no server outlives the Python process:

1. explicit ``stop()`` / context managers / pytest fixture teardown;
2. an ``atexit`` hook over every process still running (normal exit, KeyboardInterrupt);
3. a parent-death signal (``setpriv --pdeathsig KILL``) for when Python itself is killed
   (SIGKILL, OOM killer, CI timeout) and no Python code runs at all.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "DevstackError",
    "ManagedProcess",
    "OneProcessServer",
    "ServerContext",
    "stop_all",
    "tail",
]


class DevstackError(RuntimeError):
    """Base class for every failure of the local infrastructure harness."""


class ServerContext(ABC):
    """A server that is its own context manager: ``with`` starts it and stops it for good."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()
_ATEXIT_GRACE_S = 5.0


@functools.cache
def _setpriv_with_pdeathsig() -> str | None:
    """Path of util-linux ``setpriv`` if it supports ``--pdeathsig`` (>= 2.33)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in out else None


def _with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` so the child gets SIGKILL when its parent dies.

    Linux delivers the parent-death signal when the *thread* that forked the child exits,
    not the process. Only processes started from the main thread (which lives as long as
    the interpreter) get it; the others rely on the atexit hook.
    """
    setpriv = _setpriv_with_pdeathsig()
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def tail(path: Path, lines: int = 200) -> str:
    """Last ``lines`` lines of a text file ('' if missing), without reading all of it."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            block = 64 * 1024
            data = b""
            pos = end
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class ManagedProcess:
    """One server process in its own process group, output appended to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, alive={self.alive})"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def start(self) -> None:
        if self.alive:
            raise DevstackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the descriptor; ours is closed right away.
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                _with_parent_death_signal(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                close_fds=True,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the whole process group while the leader has not been reaped.

        After reaping, the group id could be recycled, so nothing is sent then.
        """
        if self._popen is None or self._popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        """True once the process has exited (and is reaped) within ``timeout`` seconds."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        self._forget()
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        stop_all([self], timeout)

    def kill(self) -> None:
        """SIGKILL the group and reap it: a crash, as far as the server can tell."""
        self.send_signal(signal.SIGKILL)
        self.wait(30.0)

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)


def stop_all(processes: Iterable[ManagedProcess], timeout: float = 15.0) -> None:
    """Stop processes in parallel: SIGTERM to all, wait up to ``timeout``, SIGKILL the rest."""
    procs = [p for p in processes if p.alive]
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        if not proc.wait(deadline - time.monotonic()):
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        # SIGKILL cannot be ignored; the wait only bounds a process stuck in the kernel.
        proc.wait(30.0)
        proc._forget()


@atexit.register
def _stop_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    stop_all(leftovers, _ATEXIT_GRACE_S)


class OneProcessServer(ServerContext):
    """A server that is one `ManagedProcess` with a work directory: `start()` waits until it
    answers, `shutdown()` stops it keeping the directory (an outage), `stop()` for good.
    Subclasses set `_process` and `_finalizer` (which removes the directory) and say when
    the server is ready."""

    _process: ManagedProcess
    _finalizer: weakref.finalize[Any, Any] | None
    error: type[DevstackError] = DevstackError

    def _remove_when_collected(self, workdir: Path) -> None:
        """Stop the process and remove `workdir` when this object goes (or at `stop()`)."""
        self._finalizer = weakref.finalize(self, _stop_and_remove, self._process, workdir)

    @property
    def running(self) -> bool:
        return self._process.alive

    @property
    def pid(self) -> int | None:
        """Process id of the running server (None when it is not running)."""
        return self._process.pid if self._process.alive else None

    def log_tail(self, lines: int = 200) -> str:
        return tail(self._process.log_path, lines)

    def start(self) -> Self:
        """Start the server and wait until it is ready."""
        if self._finalizer is None:
            raise self.error(f"{type(self).__name__} was stopped for good; create a new one")
        self._process.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self._process.kill()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and remove its working directory; the object is done after this."""
        self._process.stop(timeout)
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the server but keep everything needed to `start()` it again (an outage)."""
        self._process.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the server: a crash, the port is closed until `start()`."""
        self._process.kill()

    @abstractmethod
    def _wait_until_ready(self) -> None: ...


def _stop_and_remove(process: ManagedProcess, workdir: Path) -> None:
    """Finalizer body: must not reference the server object, or it would keep it alive."""
    stop_all([process], 5.0)
    shutil.rmtree(workdir, ignore_errors=True)
