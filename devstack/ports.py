"""Free loopback ports for the local Kafka/Redis harness.

Ports are drawn at random from *below* the kernel's ephemeral range, not with ``bind(0)``:

* ``bind(0)`` hands out ephemeral ports, and every outgoing connection on the machine draws
  from the same pool, so a port we picked can be taken as some client's source port before
  the server binds it.
* A client that keeps reconnecting to a stopped broker on an ephemeral port can be handed that
  very port as its source port and connect to itself (TCP simultaneous open). The restarted
  broker then fails with "Address already in use". Broker-restart tests hit exactly this.

Random choice (instead of a counter) keeps parallel test runs on one machine from colliding.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

__all__ = ["free_port", "free_ports"]

_HOST = "127.0.0.1"
_LOWEST = 10_000  # stay clear of well-known and commonly configured service ports
_FALLBACK_EPHEMERAL_LOW = 32_768
_ATTEMPTS = 500


def _ephemeral_low() -> int:
    """First port of the kernel's ephemeral range (Linux); a safe guess elsewhere."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_LOW


def _try_bind(port: int) -> socket.socket | None:
    """A socket bound to ``port``, or None when the port is taken.

    No SO_REUSEADDR: binding then also fails while the port has TIME_WAIT connections,
    which is the stricter test we want.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((_HOST, port))
    except OSError:
        sock.close()
        return None
    return sock


def _bind_ephemeral() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((_HOST, 0))
    return sock


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1 right now.

    All candidate sockets stay bound until every port is found, so the result has no
    duplicates. A port can still be taken between this call and the server's bind; the
    random choice makes that rare enough for tests.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    high = _ephemeral_low()
    held: list[socket.socket] = []
    try:
        if high - _LOWEST < count * 10:
            # Odd kernel configuration (tiny non-ephemeral window): let the kernel pick.
            held.extend(_bind_ephemeral() for _ in range(count))
        else:
            for _ in range(_ATTEMPTS):
                sock = _try_bind(random.randrange(_LOWEST, high))
                if sock is not None:
                    held.append(sock)
                    if len(held) == count:
                        break
            while len(held) < count:  # pragma: no cover - only on a saturated machine
                held.append(_bind_ephemeral())
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()


def free_port() -> int:
    """One free port on 127.0.0.1 (see :func:`free_ports`)."""
    return free_ports(1)[0]
