"""Real Apache Kafka (KRaft) for tests and ``make demo``, without Docker.

The broker jars come from Maven Central through the packaged ``pom.xml`` (see its comment for
why 3.9) and are cached outside the work tree. Each node runs in combined mode
(``process.roles=broker,controller``) with a static voter set, on free loopback ports, as a
``java`` child process in its own process group.

    with KafkaCluster() as kafka:
        print(kafka.bootstrap_servers)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar

from aiokafka.client import AIOKafkaClient

from devstack.ports import free_ports
from devstack.process import DevstackError, ManagedProcess, ServerContext, stop_all, tail

__all__ = [
    "KAFKA_VERSION",
    "DevstackError",
    "KafkaCluster",
    "KafkaJarsError",
    "KafkaStartError",
    "cache_dir",
    "ensure_kafka_jars",
]

KAFKA_VERSION = "3.9.2"
HOST = "127.0.0.1"

_COMPLETE_MARKER = ".guardstream-complete"
_MAVEN_TIMEOUT_S = 900.0
_FORMAT_TIMEOUT_S = 120.0
_OUTPUT_TAIL_LINES = 40
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+[\w.-]*$")
_PROBE_INTERVAL_S = 0.25
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

T = TypeVar("T")


class KafkaJarsError(DevstackError):
    """The broker jars could not be fetched (Maven missing, offline, or failing)."""


class KafkaStartError(DevstackError):
    """A broker did not come up (or died); the message carries the log tail."""


# --------------------------------------------------------------------------- jars


def cache_dir() -> Path:
    """``$GUARDSTREAM_CACHE_DIR`` or ``~/.cache/guardstream``: outside the work tree."""
    env = os.environ.get("GUARDSTREAM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "guardstream"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock, so parallel test processes don't fetch into the same dir."""
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _output_tail(text: str, lines: int = _OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _maven_copy_dependencies(version: str, staging: Path) -> Path:
    """Run Maven in ``staging`` and return the directory holding the copied jars."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaJarsError(
            "Maven (mvn) is not on PATH; it fetches the Kafka broker jars. "
            "Install it (apt-get install maven) or run `make deps`."
        )
    # The pom is copied so that Maven never writes next to the installed package.
    pom = staging / "pom.xml"
    pom.write_bytes(resources.files(__package__).joinpath("pom.xml").read_bytes())
    jars = staging / "jars"
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={jars}",
        f"-Dkafka.version={version}",
    ]
    try:
        done = subprocess.run(
            argv,
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=_MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaJarsError(f"Maven did not finish within {_MAVEN_TIMEOUT_S:.0f} s") from exc
    # Maven 3.8 emits colour resets even in batch mode; error messages should be plain text.
    output = _ANSI_RE.sub("", (done.stdout or "") + (done.stderr or ""))
    if done.returncode != 0:
        raise KafkaJarsError(
            f"Maven failed (exit {done.returncode}) fetching Kafka {version}:\n"
            f"{_output_tail(output)}"
        )
    if not list(jars.glob(f"kafka_*-{version}.jar")):
        raise KafkaJarsError(
            f"Maven succeeded but no kafka_*-{version}.jar in {jars}:\n{_output_tail(output)}"
        )
    return jars


def ensure_kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """Directory with the Kafka ``version`` broker jars, fetching them once if needed.

    The jars are copied into a staging directory and renamed into place together with a
    completion marker, so a half-finished download is never mistaken for a good one.
    """
    if not _VERSION_RE.match(version):
        raise KafkaJarsError(f"not a Kafka version: {version!r}")
    target = cache_dir() / f"kafka-{version}"
    if (target / _COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f"kafka-{version}.lock"):
        if (target / _COMPLETE_MARKER).is_file():  # another process finished meanwhile
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".kafka-{version}.", dir=target.parent))
        try:
            jars = _maven_copy_dependencies(version, staging)
            names = sorted(p.name for p in jars.glob("*.jar"))
            (jars / _COMPLETE_MARKER).write_text("\n".join(names) + "\n")
            if target.exists():  # leftover without marker: an interrupted older fetch
                shutil.rmtree(target)
            jars.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- helpers


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError(
            "java is not on PATH; Kafka needs Java 17 (apt-get install openjdk-17-jre-headless)"
        )
    return java


def _random_cluster_id() -> str:
    """A Kafka ``Uuid`` string: URL-safe base64 of 16 random bytes, unpadded.

    Same rule as ``Uuid.randomUuid()``: never starting with '-', which CLI parsers would
    read as an option. Saves starting a JVM just for ``StorageTool random-uuid``.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _render_properties(props: Mapping[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n")

    return "".join(f"{key}={escape(value)}\n" for key, value in props.items())


def _to_property(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a private loop in a helper thread.

    A thread (rather than plain ``asyncio.run``) keeps the sync API usable from code that is
    already inside a running event loop, e.g. an async pytest fixture.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="guardstream-kafka-probe", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _broker_ids_via(address: str, timeout_s: float) -> set[int]:
    """Broker ids in the metadata answered by the node at ``address`` itself.

    Asking each node (not "any node") matters after a crash: the survivors keep listing a
    killed broker until its session times out, while the restarted process only answers
    once it has caught up and registered again.
    """
    client = AIOKafkaClient(
        bootstrap_servers=address,
        request_timeout_ms=max(int(timeout_s * 1000), 500),
        client_id="guardstream-devstack-probe",
    )
    try:
        # No asyncio timeout around bootstrap(): cancelling it between connect and the
        # metadata answer leaks the connection (an "Unclosed AIOKafkaConnection"
        # ResourceWarning, an error under pytest). request_timeout_ms bounds each step
        # and aiokafka closes the connection itself when it fires.
        await client.bootstrap()
        return {broker.nodeId for broker in client.cluster.brokers()}
    finally:
        await client.close()


async def _metadata_views(addresses: Sequence[str], timeout_s: float) -> list[set[int]]:
    """Per address, the broker ids its metadata lists (empty when it did not answer)."""
    results = await asyncio.gather(
        *(_broker_ids_via(address, timeout_s) for address in addresses),
        return_exceptions=True,
    )
    return [r if isinstance(r, set) else set() for r in results]


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- cluster


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.directory / "log4j.properties"

    @property
    def server_log(self) -> Path:
        return self.directory / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.directory / "stdout.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive


def _cleanup(nodes: list[_Node], data_dir: Path | None, timeout: float) -> None:
    """Finalizer body: must not reference the cluster, or it would keep it alive."""
    stop_all([n.process for n in nodes if n.process is not None], timeout)
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


class KafkaCluster(ServerContext):
    """A KRaft cluster of ``n_brokers`` combined broker+controller nodes on loopback.

    Ports and directories are fixed at ``start()`` and reused by ``start_broker(i)``, so a
    restarted node comes back with its data, like a real broker after a crash.
    """

    def __init__(
        self,
        n_brokers: int = 1,
        data_dir: Path | str | None = None,
        heap_mb: int | None = None,
        extra_config: Mapping[str, object] | None = None,
        *,
        keep_data: bool = False,
        version: str = KAFKA_VERSION,
        start_timeout: float = 60.0,
    ) -> None:
        if n_brokers < 1:
            raise ValueError(f"n_brokers must be >= 1, got {n_brokers}")
        self.n_brokers = n_brokers
        # Two cores and a shared machine: small heaps, smaller still per node in a cluster.
        self.heap_mb = heap_mb if heap_mb is not None else (512 if n_brokers == 1 else 384)
        self.extra_config = {k: _to_property(v) for k, v in (extra_config or {}).items()}
        self.keep_data = keep_data
        self.version = version
        self.start_timeout = start_timeout
        self._requested_data_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = None
        self.cluster_id = _random_cluster_id()
        self._nodes: list[_Node] = []
        self._jars: Path | None = None
        self._java: str | None = None
        self._finalizer: weakref.finalize[Any, Self] | None = None

    # ------------------------------------------------------------------ public API

    def __repr__(self) -> str:
        state = self.bootstrap_servers if self._nodes else "not started"
        return f"KafkaCluster(n_brokers={self.n_brokers}, {state})"

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:p1,127.0.0.1:p2,...`` — all nodes, stopped ones included."""
        return ",".join(node.address for node in self._started_nodes())

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self._started_nodes()]

    @property
    def node_ids(self) -> list[int]:
        """Kafka ``node.id`` of each node; equal to its index."""
        return [node.node_id for node in self._started_nodes()]

    @property
    def log_paths(self) -> list[Path]:
        return [node.server_log for node in self._started_nodes()]

    @property
    def running(self) -> bool:
        return bool(self._nodes) and all(node.alive for node in self._nodes)

    def alive_brokers(self) -> list[int]:
        return [node.node_id for node in self._nodes if node.alive]

    def log_tail(self, lines: int = 200) -> str:
        """Last ``lines`` lines of every node's broker log (and JVM output, if any)."""
        sections: list[str] = []
        for node in self._nodes:
            state = "running" if node.alive else "stopped"
            sections.append(f"---- broker {node.node_id} ({state}) {node.server_log} ----")
            sections.append(tail(node.server_log, lines) or "(empty)")
            jvm_output = tail(node.stdout_log, lines)
            if jvm_output:
                sections.append(f"---- broker {node.node_id} JVM output ----")
                sections.append(jvm_output)
        return "\n".join(sections)

    def start(self, timeout: float | None = None) -> Self:
        """Format storage, start every node, and wait until all brokers are registered."""
        if self._nodes:
            raise DevstackError("KafkaCluster is already started")
        self._jars = ensure_kafka_jars(self.version)
        self._java = _find_java()
        owned = self._requested_data_dir is None
        self.data_dir = self._prepare_data_dir()
        self._nodes = self._plan_nodes(self.data_dir)
        remove = self.data_dir if owned and not self.keep_data else None
        self._finalizer = weakref.finalize(self, _cleanup, self._nodes, remove, 5.0)
        try:
            for node in self._nodes:
                self._write_node_files(node)
            self._format_storage(self._nodes)
            for node in self._nodes:
                self._launch(node)
            self._wait_for_brokers(self.node_ids, timeout or self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every node, SIGKILL after ``timeout`` s; remove the temp data dir."""
        stop_all([n.process for n in self._nodes if n.process is not None], timeout)
        if self._finalizer is not None:
            self._finalizer()  # removes the data dir (when ours); runs at most once
            self._finalizer = None
        self._nodes = []

    def stop_broker(self, i: int, timeout: float = 15.0) -> None:
        """Cleanly stop node ``i`` (controlled shutdown); its data dir and ports are kept."""
        node = self._node(i)
        if node.process is not None:
            node.process.stop(timeout)

    def kill_broker(self, i: int) -> None:
        """SIGKILL node ``i``: a crash without controlled shutdown."""
        node = self._node(i)
        if node.process is not None:
            node.process.kill()

    def start_broker(self, i: int, timeout: float | None = None) -> None:
        """Restart node ``i`` on its old ports and data; wait until it is registered again."""
        node = self._node(i)
        if node.alive:
            raise DevstackError(f"broker {i} is already running")
        self._launch(node)
        self._wait_for_brokers([node.node_id], timeout or self.start_timeout)

    def wait_for_brokers(self, ids: Sequence[int] | None = None, timeout: float = 60.0) -> None:
        """Block until the metadata lists ``ids`` (default: every running node)."""
        self._wait_for_brokers(self.alive_brokers() if ids is None else ids, timeout)

    # ------------------------------------------------------------------ internals

    def _started_nodes(self) -> list[_Node]:
        if not self._nodes:
            raise DevstackError("KafkaCluster is not started")
        return self._nodes

    def _node(self, i: int) -> _Node:
        nodes = self._started_nodes()
        if not 0 <= i < len(nodes):
            raise IndexError(f"no broker {i} in a cluster of {len(nodes)}")
        return nodes[i]

    def _prepare_data_dir(self) -> Path:
        if self._requested_data_dir is None:
            return Path(tempfile.mkdtemp(prefix="guardstream-kafka-"))
        self._requested_data_dir.mkdir(parents=True, exist_ok=True)
        return self._requested_data_dir.resolve()

    def _plan_nodes(self, data_dir: Path) -> list[_Node]:
        ports = free_ports(2 * self.n_brokers)
        return [
            _Node(
                node_id=i,
                port=ports[2 * i],
                controller_port=ports[2 * i + 1],
                directory=data_dir / f"node-{i}",
            )
            for i in range(self.n_brokers)
        ]

    def _server_properties(self, node: _Node) -> dict[str, str]:
        n = self.n_brokers
        replication = min(n, 3)
        # One node can only ever have ISR 1; with 3 replicas, 2 in sync survives one loss.
        min_isr = 2 if replication >= 3 else 1
        voters = ",".join(f"{x.node_id}@{HOST}:{x.controller_port}" for x in self._nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.address},CONTROLLER://{HOST}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.address}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": str(replication),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(replication),
            "transaction.state.log.replication.factor": str(replication),
            "transaction.state.log.min.isr": str(min_isr),
            # Topics are created explicitly (topics/ catalog); a typo must not create one.
            "auto.create.topics.enable": "false",
            # Tests and demos start consumers one at a time; don't wait 3 s per rebalance.
            "group.initial.rebalance.delay.ms": "0",
            # Fewer internal partitions: faster first group/transaction coordinator load.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.num.partitions": "10",
            # Small segments and buffers: little disk and heap on a 2-core shared machine.
            "log.segment.bytes": str(16 * 1024 * 1024),
            "offsets.topic.segment.bytes": str(16 * 1024 * 1024),
            "transaction.state.log.segment.bytes": str(16 * 1024 * 1024),
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "log.cleaner.threads": "1",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            # Notice a stopped/killed node within seconds, so failure tests stay short.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "4000",
            "replica.lag.time.max.ms": "10000",
            "unclean.leader.election.enable": "false",
        }
        props.update(self.extra_config)
        return props

    def _write_node_files(self, node: _Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        node.config_path.write_text(_render_properties(self._server_properties(node)))
        template = resources.files(__package__).joinpath("log4j.properties")
        node.log4j_path.write_bytes(template.read_bytes())

    def _java_argv(self, node: _Node, heap_mb: int, *main: str) -> list[str]:
        assert self._java is not None, "set by start()"
        assert self._jars is not None, "set by start()"
        return [
            self._java,
            f"-Xmx{heap_mb}m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={node.directory}",
            f"-Dlog4j.configuration=file:{node.log4j_path}",
            "-cp",
            # A classpath wildcard that java expands itself; no shell is involved.
            f"{self._jars}/*",
            *main,
        ]

    def _format_storage(self, nodes: Sequence[_Node]) -> None:
        """``StorageTool format`` for every node, in parallel (each is a JVM start)."""
        running: list[tuple[_Node, subprocess.Popen[str]]] = []
        for node in nodes:
            argv = self._java_argv(node, 256, "kafka.tools.StorageTool", "format")
            argv += ["-t", self.cluster_id, "-c", str(node.config_path), "--ignore-formatted"]
            # The short-lived tool does not benefit from the optimizing JIT.
            argv.insert(1, "-XX:TieredStopAtLevel=1")
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            running.append((node, proc))
        failures: list[str] = []
        for node, proc in running:
            try:
                output, _ = proc.communicate(timeout=_FORMAT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
                failures.append(f"node {node.node_id}: timed out\n{_output_tail(output)}")
                continue
            if proc.returncode != 0:
                failures.append(
                    f"node {node.node_id}: exit {proc.returncode}\n{_output_tail(output)}"
                )
        if failures:
            raise KafkaStartError("formatting KRaft storage failed:\n" + "\n".join(failures))

    def _launch(self, node: _Node) -> None:
        argv = self._java_argv(node, self.heap_mb, "kafka.Kafka", str(node.config_path))
        node.process = ManagedProcess(
            f"kafka-broker-{node.node_id}", argv, node.stdout_log, cwd=node.directory
        )
        node.process.start()

    def _ready(self, ids: set[int], timeout_s: float) -> tuple[bool, set[int]]:
        """Whether every node in ``ids`` answers metadata listing all of ``ids``.

        Also returns the union of what the nodes reported, for the timeout message.
        """
        nodes = [n for n in self._nodes if n.node_id in ids]
        if not all(_accepts_tcp(n.port) for n in nodes):
            return False, set()
        views = _run_coroutine_sync(lambda: _metadata_views([n.address for n in nodes], timeout_s))
        seen = set().union(*views) if views else set()
        return all(ids <= view for view in views), seen

    def _wait_for_brokers(self, ids: Sequence[int], timeout: float) -> None:
        expected = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            for node in self._nodes:
                if node.node_id in expected and not node.alive:
                    code = node.process.returncode if node.process else None
                    raise KafkaStartError(
                        f"Kafka broker {node.node_id} exited (code {code}) while starting\n"
                        + self.log_tail(80)
                    )
            remaining = deadline - time.monotonic()
            ready, seen = self._ready(expected, min(5.0, max(remaining, 0.5)))
            if ready:
                return
            if remaining <= 0:
                raise KafkaStartError(
                    f"Kafka brokers {sorted(expected)} not all answering after {timeout:.0f} s "
                    f"(metadata listed {sorted(seen)})\n" + self.log_tail(80)
                )
            time.sleep(_PROBE_INTERVAL_S)
