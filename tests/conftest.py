"""Shared fixtures: real Kafka and Redis, started on demand and torn down by the session.

Nothing is started unless a test asks for it (fixtures are lazy), so pure unit tests run
without Java or redis-server. Tests isolate their data with ``topic_prefix`` rather than
with a broker each: a broker start costs seconds, a prefix costs nothing.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Generator, Iterator
from types import FrameType

import pytest
from hypothesis import settings

from devstack.kafka import KafkaCluster
from devstack.redis import RedisServer

# No per-example deadline: it is a timing assertion, and on a shared machine (CI, a soak
# next to the suite) a slow example failed a property that holds (performance is measured
# in bench/, never asserted in tests).
settings.register_profile("guardstream", deadline=None)
settings.load_profile("guardstream")

# Fixtures whose presence marks a test as needing the service (for `-m "not kafka"`).
_KAFKA_FIXTURES = frozenset({"kafka_cluster", "bootstrap_servers"})
_REDIS_FIXTURES = frozenset({"redis_server", "redis_url"})
_LOG_TAIL_LINES = 200


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Treat SIGTERM (CI timeouts, `kill`) like Ctrl-C: fixtures tear down, brokers stop.

    Python's default SIGTERM action exits without running fixture teardown or atexit.
    The servers would still die (parent-death signal) but leave their temp dirs behind.
    A handler someone else installed is left alone.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """One single-node KRaft broker for the whole session."""
    with KafkaCluster(n_brokers=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_cluster: KafkaCluster) -> str:
    return kafka_cluster.bootstrap_servers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (no persistence)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def topic_prefix() -> str:
    """Unique per test (e.g. ``t1a2b3c4d5e6.``): topics and groups of other tests stay apart."""
    return f"t{uuid.uuid4().hex[:12]}."


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the services they use, so `-m "not kafka"` works without bookkeeping."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if names & _REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)


def _log_sources(item: pytest.Item) -> list[tuple[str, KafkaCluster | RedisServer]]:
    """Every Kafka cluster / Redis server fixture value the test used, by fixture name.

    Found by type, so clusters from other conftest files or test modules (e.g. a 3-node
    fixture) get their logs attached too without registering anywhere.
    """
    funcargs = getattr(item, "funcargs", {})
    return [
        (name, value)
        for name, value in funcargs.items()
        if isinstance(value, KafkaCluster | RedisServer)
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the broker (and Redis) log tails to the report."""
    report = yield
    if report.failed:
        for name, source in _log_sources(item):
            try:
                text = source.log_tail(_LOG_TAIL_LINES)
            except Exception as exc:  # a report hook must never mask the real failure
                text = f"(log tail unavailable: {exc!r})"
            report.sections.append((f"{name} log tail ({report.when})", text))
    return report
