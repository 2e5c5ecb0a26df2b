"""Crash safety (DESIGN §10, issues 6 and 11): a production-mode worker (exactly once, forensic
audit) that is killed, paused or cut off ends where an uninterrupted run ends: the audit trail
verifies, no audit decision or alert is missing or duplicated, and the final breaker, budget and
SLO states are equal. Scenarios: one worker SIGKILLed and restarted five times; two workers in
one consumer group of which one is SIGKILLed repeatedly while two busy loops compete for the
cores; a worker SIGSTOPped past its session timeout (its partitions move, it comes back as a
zombie, is fenced and must recover without exiting); the broker restarted mid-run. Snapshots
are taken every few batches, so takeovers restore from a snapshot and its tail (issue 12).

`bench/soak_crash.py` runs these scenarios many times in a row; CI runs each once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devstack.kafka import KafkaCluster
from devstack.process import ManagedProcess
from schemas.types import rfc3339_ms
from tests.support.worker_process import WorkerProcess, cli_env, run_cli, running_worker
from topics.catalog import INPUT_TOPICS

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
# Smaller workloads reproduce a failure faster by hand (`GUARDSTREAM_CRASH_TEST_EVENTS=50000`).
EVENTS = int(os.environ.get("GUARDSTREAM_CRASH_TEST_EVENTS", "200000"))
# The pause and broker-restart scenarios act once, a few seconds in: a shorter workload (with
# its own uninterrupted run) keeps them mid-stream and CI within its budget.
SHORT_EVENTS = EVENTS * 3 // 10
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure", "groq", "bedrock"]
KILLS = 5
TICK_EVERY = 3750  # calls: a minute of event time
PARTITIONS = 4  # the catalog's default for every input and routed topic
INPUT_PARTITIONS = 12  # 4 partitions x 3 input topics: `publish` sends a tick to each
SESSION_TIMEOUT_S = 6  # the broker's minimum: partitions of a silent worker move soonest

BUDGETS = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: 300
    thresholds:
      - {percent: 25, action: notify}
      - {percent: 50, action: notify}
      - {percent: 75, action: notify}
      - {percent: 100, action: notify}
"""

SLOS = """
slos:
  slo.availability:
    sli: {kind: availability}
    target: 0.995
    period: 7d
    group_by: [vendor, tool]
    min_events: 5
"""


def workload(events: int) -> bytes:
    """200,000 calls over ~55 minutes of event time; each vendor has a bad spell (its
    breaker opens and closes, its SLO pages and resolves); research spends through all four
    thresholds; a clock tick per partition every minute of event time (fewer `events`: the
    first of them)."""
    rng = random.Random(11)
    lines = []
    for n in range(events):
        ts = T0_MS + n * 16
        vendor = VENDORS[n % len(VENDORS)]
        spell = (n // 20_000) % len(VENDORS) == VENDORS.index(vendor)
        failing = spell and rng.random() < 0.6
        document: dict[str, Any] = {
            "event_id": f"e{n}",
            "ts": rfc3339_ms(ts),
            "vendor": vendor,
            "tool": "chat",
            "status": "error" if failing else "success",
            "error_type": "503" if failing else None,
            "duration_ms": 80,
            "cost_usd": "0.004",
            "team": "research" if n % 3 == 0 else "search",
        }
        lines.append(orjson.dumps(document))
        if n % TICK_EVERY == TICK_EVERY - 1:
            lines.append(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts)}))
    return b"\n".join(lines) + b"\n"


def environment(bootstrap: str, prefix: str, policies: Path) -> dict[str, str]:
    return cli_env(
        bootstrap,
        prefix,
        GUARDSTREAM_MODE="production",
        GUARDSTREAM_POLICY_DIR=str(policies),
        GUARDSTREAM_CLOCK_INTERVAL_S="0",
        GUARDSTREAM_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
        # Snapshots every few batches: every takeover then restores from one and its tail.
        GUARDSTREAM_SNAPSHOT_EVERY="5000",
        GUARDSTREAM_SNAPSHOT_EVERY_ROUTED="100",
        # Rebalances, fencing and recovery are logged at INFO: what a failure here needs.
        GUARDSTREAM_LOG_LEVEL="INFO",
    )


def expected_inputs(events: int) -> int:
    return events + events // TICK_EVERY * INPUT_PARTITIONS


def export_when_settled(
    env: dict[str, str], path: Path, events: int, timeout_s: float = 600
) -> list[dict[str, Any]]:
    """The audit trail once it records every input (each call, and each clock tick once per
    input partition) and two exports a few seconds apart are equal (all committed)."""
    deadline = time.monotonic() + timeout_s
    previous: bytes | None = None
    while True:
        exported = run_cli(["audit", "export", str(path)], env, timeout=300)
        assert exported.returncode == 0, exported.stderr.decode()
        content = path.read_bytes()
        inputs = content.count(b'"chain":"input-p')
        behind: list[str] = []
        if content == previous and inputs >= expected_inputs(events):
            # Every input recorded is not yet the end: the routed partitions (spend, SLO
            # counts) may still wait for processing, and their states with them.
            behind = unprocessed_partitions(env)
            if not behind:
                return [orjson.loads(line) for line in content.splitlines()]
        if time.monotonic() >= deadline:
            dump_worker_tasks(env)
        assert time.monotonic() < deadline, (
            f"the audit trail did not settle ({inputs} of {expected_inputs(events)} inputs; "
            f"partitions with unprocessed records: {behind}); "
            f"evidence (trail, worker logs with their tasks' stacks, topics) kept in "
            f"{keep_evidence(path.parent, env)}"
        )
        previous = content
        time.sleep(4)


def dump_worker_tasks(env: dict[str, str]) -> None:
    """Ask every live worker of this run (its topic prefix in the environment) for the stack
    of each of its asyncio tasks: a Faust worker writes them to its log on SIGUSR1. What a
    stalled partition waits on is then in the evidence."""
    marker = f"GUARDSTREAM_TOPIC_PREFIX={env['GUARDSTREAM_TOPIC_PREFIX']}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if b"worker" in argv and marker in environment:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGUSR1)
    time.sleep(3)  # the dump goes through the worker's event loop


def keep_evidence(tmp: Path, env: dict[str, str] | None = None) -> Path:
    """A copy of a failed run's trail and worker logs that outlives pytest's temporary
    directories (it keeps the last three runs only, and a soak makes many); with `env`, the
    routed and state topics too and the group's committed offsets (what a lost decision needs
    to be traced: which routed records reached which counter, and what was committed)."""
    kept = (
        Path(tempfile.gettempdir()) / "guardstream-crash-evidence" / f"{tmp.name}-{time.time_ns()}"
    )
    shutil.copytree(tmp, kept, ignore=shutil.ignore_patterns("data"))
    if env is not None:
        try:
            _dump_topics(env, kept)
        except Exception as exc:  # the evidence must not hide the failure it documents
            (kept / "dump-error.txt").write_text(repr(exc))
    return kept


def _dump_topics(env: dict[str, str], kept: Path) -> None:
    topics = kept / "topics"
    topics.mkdir()
    for topic in ("slo-counts", "budget-spend", "slo-state", "breaker-state", "alerts"):
        tail = ["tail", topic, "--json", "--from-beginning", "--idle-timeout", "3"]
        (topics / f"{topic}.jsonl").write_bytes(run_cli(tail, env, timeout=120).stdout)
    (kept / "committed-offsets.json").write_bytes(orjson.dumps(committed_offsets(env)))


def unprocessed_partitions(env: dict[str, str]) -> list[str]:
    """The worker group's input and routed partitions holding committed records past its
    committed offset (`topic[partition]`)."""
    prefix = env["GUARDSTREAM_TOPIC_PREFIX"]
    consumed = [f"{prefix}{t}" for t in (*INPUT_TOPICS, "budget-spend", "slo-counts")]

    async def read() -> list[str]:
        committed = await read_committed_offsets(env)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=env["GUARDSTREAM_KAFKA_BOOTSTRAP"],
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            behind = []
            for topic in consumed:
                for partition in range(PARTITIONS):
                    name, tp = f"{topic}[{partition}]", TopicPartition(topic, partition)
                    offset = committed.get(name, 0)
                    end = (await consumer.end_offsets([tp]))[tp]
                    if end - offset <= 1:
                        continue  # nothing past it, or only the commit's transaction marker
                    consumer.assign([tp])
                    consumer.seek(tp, offset)
                    if (await consumer.getmany(tp, timeout_ms=1000)).get(tp):
                        behind.append(name)  # a committed record, not only aborted ones
            return behind
        finally:
            await consumer.stop()

    return asyncio.run(read())


def committed_offsets(env: dict[str, str]) -> dict[str, int]:
    """The worker group's committed offsets, `topic[partition]` -> offset."""
    return asyncio.run(read_committed_offsets(env))


async def read_committed_offsets(env: dict[str, str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=env["GUARDSTREAM_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(env["GUARDSTREAM_APP_ID"])
    finally:
        await admin.close()
    return {f"{tp.topic}[{tp.partition}]": meta.offset for tp, meta in offsets.items()}


def outcome(env: dict[str, str], tmp: Path, events: int = EVENTS) -> dict[str, Any]:
    trail = export_when_settled(env, tmp / "trail.jsonl", events)
    verified = run_cli(["audit", "verify", "--input", str(tmp / "trail.jsonl")], env, timeout=300)
    assert verified.returncode == 0, (
        f"evidence (trail, worker logs) kept in {keep_evidence(tmp)}\n"
        + verified.stdout.decode()
        + verified.stderr.decode()
    )
    decisions = Counter(
        orjson.dumps(
            {k: v for k, v in record["payload"].items() if k != "event_id"},
            option=orjson.OPT_SORT_KEYS,
        )
        for record in trail
        if not record["chain"].startswith("input-")
    )
    tail = run_cli(
        ["tail", "alerts", "--json", "--from-beginning", "--idle-timeout", "3"], env, timeout=120
    )
    alerts = Counter(
        (a["alert_id"], a["status"]) for a in map(orjson.loads, tail.stdout.splitlines())
    )
    states = {}
    for command in ("breakers", "budgets", "slos"):
        result = run_cli([command, "--json"], env, timeout=120)
        assert result.returncode == 0, result.stderr.decode()
        states[command] = sorted(orjson.loads(result.stdout), key=orjson.dumps)
    inputs = sum(1 for record in trail if record["chain"].startswith("input-"))
    return {"decisions": decisions, "alerts": alerts, "states": states, "inputs": inputs}


def prepared(bootstrap: str, policies: Path, events: int = EVENTS) -> dict[str, str]:
    """A fresh set of topics (own prefix, own consumer group) holding the whole workload."""
    env = environment(bootstrap, f"t{uuid.uuid4().hex[:12]}.", policies)
    assert run_cli(["topics", "create"], env).returncode == 0
    published = run_cli(["publish", "-"], env, stdin=workload(events), timeout=600)
    assert published.returncode == 0, published.stderr.decode()
    return env


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("policies")
    (directory / "budgets.yaml").write_text(BUDGETS)
    (directory / "slos.yaml").write_text(SLOS)
    return directory


def uninterrupted_run(bootstrap: str, policies: Path, work: Path, events: int) -> dict[str, Any]:
    """What one worker, never interrupted, makes of the workload."""
    env = prepared(bootstrap, policies, events)
    with running_worker(env, work / "worker") as process:
        result = outcome(env, work, events)
        assert process.alive(), process.log_tail()
    assert result["decisions"], "the workload made no decisions"
    return result


@pytest.fixture(scope="module")
def uninterrupted(
    bootstrap_servers: str, policies: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("uninterrupted")
    return uninterrupted_run(bootstrap_servers, policies, work, EVENTS)


@pytest.fixture(scope="module")
def uninterrupted_short(
    bootstrap_servers: str, policies: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("uninterrupted-short")
    return uninterrupted_run(bootstrap_servers, policies, work, SHORT_EVENTS)


def assert_same_outcome(
    killed: dict[str, Any], uninterrupted: dict[str, Any], env: dict[str, str], tmp: Path
) -> None:
    compared = ("inputs", "decisions", "alerts", "states")
    if any(killed[part] != uninterrupted[part] for part in compared):
        print(f"evidence (trail, worker logs, topics) kept in {keep_evidence(tmp, env)}")
    assert killed["inputs"] == uninterrupted["inputs"]  # every input recorded exactly once
    assert killed["decisions"] == uninterrupted["decisions"]  # none missing, none twice
    assert killed["alerts"] == uninterrupted["alerts"]
    assert killed["states"] == uninterrupted["states"]


def kill(worker: WorkerProcess) -> None:
    worker.process.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.timeout(1500)  # two runs of 200,000 events through the forensic pipeline
def test_sigkill_and_restart_five_times_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, policies: Path, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    env = prepared(bootstrap_servers, policies)
    rng = random.Random(5)
    for round_number in range(KILLS):
        with running_worker(env, tmp_path / f"worker-{round_number}") as worker:
            time.sleep(rng.uniform(3.0, 9.0))
            kill(worker)
    with running_worker(env, tmp_path / "worker-final") as worker:
        killed = outcome(env, tmp_path)
        assert worker.alive(), worker.log_tail()
    assert_same_outcome(killed, uninterrupted, env, tmp_path)


@contextmanager
def cpu_hogs(tmp_path: Path, count: int = 2) -> Iterator[None]:
    """`count` busy loops competing with the workers for the cores (a shared, loaded machine:
    commits and heartbeats run late, transactions and group sessions are at stake)."""
    hogs = [
        ManagedProcess(
            f"cpu-hog-{n}", [sys.executable, "-c", "while True: pass"], tmp_path / f"hog-{n}.log"
        )
        for n in range(count)
    ]
    try:
        for hog in hogs:
            hog.start()
        yield
    finally:
        for hog in hogs:
            hog.kill()


@pytest.mark.timeout(1500)
def test_two_workers_in_one_group_one_killed_repeatedly_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, policies: Path, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    """Two workers share the partitions; one of them is SIGKILLed at a random moment, its
    partitions move to the survivor (after the session timeout), and when it comes back some
    move back (a revocation on the survivor, mid-stream) — five times, while two busy loops
    take the cores from them (a CI run failed here once: the survivor, starved, was fenced
    and exited)."""
    env = prepared(bootstrap_servers, policies)
    rng = random.Random(7)
    with cpu_hogs(tmp_path), ExitStack() as workers:
        pair = [workers.enter_context(running_worker(env, tmp_path / "a-0"))]
        pair.append(workers.enter_context(running_worker(env, tmp_path / "b-0")))
        for round_number in range(1, KILLS + 1):
            time.sleep(rng.uniform(3.0, 9.0))
            victim = rng.randrange(2)
            kill(pair[victim])
            time.sleep(rng.uniform(0.0, 8.0))  # the survivor may take over before the restart
            name = f"{'ab'[victim]}-{round_number}"
            pair[victim] = workers.enter_context(running_worker(env, tmp_path / name))
        killed = outcome(env, tmp_path)
        for worker in pair:
            assert worker.alive(), worker.log_tail()
    assert_same_outcome(killed, uninterrupted, env, tmp_path)


@pytest.mark.timeout(1500)
def test_a_zombie_paused_past_its_session_is_fenced_recovers_and_ends_like_an_uninterrupted_run(
    bootstrap_servers: str, policies: Path, uninterrupted_short: dict[str, Any], tmp_path: Path
) -> None:
    """Two workers share the partitions; one is SIGSTOPped mid-stream for longer than its
    session timeout, so the group gives its partitions to the other, whose producers fence the
    paused one's transactional ids. SIGCONT: the zombie finds its transactions fenced, gives its
    partitions up, rejoins and carries on — it never exits, and nothing it did while it was
    not the owner becomes visible."""
    env = prepared(bootstrap_servers, policies, SHORT_EVENTS)
    with ExitStack() as workers:
        zombie = workers.enter_context(running_worker(env, tmp_path / "zombie"))
        survivor = workers.enter_context(running_worker(env, tmp_path / "survivor"))
        time.sleep(4.0)  # both are processing the backlog
        zombie.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(SESSION_TIMEOUT_S * 2 + 4)  # the group moves the zombie's partitions
        finally:
            zombie.process.send_signal(signal.SIGCONT)
        paused = outcome(env, tmp_path, SHORT_EVENTS)
        for worker in (zombie, survivor):
            assert worker.alive(), worker.log_tail()
    assert_same_outcome(paused, uninterrupted_short, env, tmp_path)


@pytest.mark.timeout(1500)
def test_a_broker_restart_mid_run_ends_like_an_uninterrupted_run(
    policies: Path, uninterrupted_short: dict[str, Any], tmp_path: Path
) -> None:
    """The (only) broker stops mid-stream and comes back 8 s later on the same ports and data:
    the worker's transactions and group session fail meanwhile; it must wait, recover by
    itself and end where an uninterrupted run ends. A broker of its own, so that no other
    test sees the outage."""
    with KafkaCluster(n_brokers=1) as cluster:
        env = prepared(cluster.bootstrap_servers, policies, SHORT_EVENTS)
        with running_worker(env, tmp_path / "worker") as worker:
            time.sleep(3.0)
            cluster.stop_broker(0)
            time.sleep(8.0)
            cluster.start_broker(0)
            restarted = outcome(env, tmp_path, SHORT_EVENTS)
            assert worker.alive(), worker.log_tail()
        assert_same_outcome(restarted, uninterrupted_short, env, tmp_path)  # broker still up
