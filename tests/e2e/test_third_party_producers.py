"""Batches from the producers guardstream's users run: librdkafka and Java, every codec.

A librdkafka producer (the `confluent-kafka` wheel) with `compression.type=lz4` once stopped
the worker for good: aiokafka had no lz4 library, raised out of every fetch, and the batch was
never committed (issue 11 §5). Here one worker in production mode (exactly once, forensic
trail) reads the same invocations sent by `guardstream publish`, by librdkafka with each
codec and by kafka-clients with lz4 and zstd, with null keys and record headers; each producer
drives its own vendor's breaker, and every breaker must end where the `publish` one does.

Then the policy for batches that still cannot be decoded (`batching.undecodable`): a worker on
a machine without the codec library dead-letters the batch's offset range, alerts, counts it,
keeps processing the partition, and does not trip over the range again after a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition
from confluent_kafka import KafkaError, Message, Producer

from devstack.kafka import ensure_kafka_jars
from schemas.types import rfc3339_ms
from tests.e2e.test_breakers import breaker_env, eventually, publish
from tests.support.worker_process import running_worker
from workers.batching.undecodable import codec_name
from workers.ingest.undecodable import ALERT_KIND, RESOLVE_AFTER_MS
from workers.metrics import EVENTS_ACCEPTED, EVENTS_DEAD_LETTERED, UNDECODABLE_BATCHES

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ACCEPTED = f"{EVENTS_ACCEPTED}_total"
DEAD_LETTERED = f"{EVENTS_DEAD_LETTERED}_total"
UNDECODABLE = f"{UNDECODABLE_BATCHES}_total"

T0_MS = 1_795_000_000_000
LIBRDKAFKA_CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
JAVA_CODECS = ["lz4", "zstd"]
JAVA_SOURCE = Path(__file__).parents[1] / "support" / "java" / "JsonLinesProducer.java"
# kafka-clients and the codec libraries it loads; slf4j-api alone logs nothing (NOP).
JAVA_JARS = ["kafka-clients-*.jar", "lz4-java-*.jar", "snappy-java-*.jar", "zstd-jni-*.jar"]
JAVA_JARS_OPTIONAL = ["slf4j-api-*.jar"]
FETCH_MAX_BYTES = 16 * 1024 * 1024


def invocations(vendor: str, *, successes: int = 12, failures: int = 6) -> list[dict[str, Any]]:
    """Healthy calls, then a run of 503s that opens the vendor's breaker at the fifth."""
    documents: list[dict[str, Any]] = []
    for n in range(successes + failures):
        ok = n < successes
        document: dict[str, Any] = {
            "event_id": f"{vendor}-{n}",
            "ts": rfc3339_ms(T0_MS + n),
            "vendor": vendor,
            "tool": "chat",
            "status": "success" if ok else "error",
            "duration_ms": 100 + n,
            "tokens_in": 200,
            "tokens_out": 50,
            "cost_usd": "0.0125",
            "team": "search",
        }
        if not ok:
            document["error_type"] = "503"
        documents.append(document)
    return documents


def produce_librdkafka(
    bootstrap: str,
    topic: str,
    codec: str,
    documents: list[dict[str, Any]],
    *,
    timestamp_ms: int = 0,
) -> None:
    """Send with librdkafka: null keys, two headers, one `codec` batch (linger)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "enable.idempotence": True,  # in order, as the breakers need
            "linger.ms": 100,
        }
    )
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failed.append(error)

    for document in documents:
        producer.produce(
            topic,
            value=orjson.dumps(document),
            key=None,
            headers=[("producer", f"librdkafka/{codec}".encode()), ("trace", None)],
            timestamp=timestamp_ms,  # 0: the producer's clock
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0, "librdkafka did not deliver everything within 30 s"
    assert failed == []


def jsonl(documents: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(document) + b"\n" for document in documents)


def produce_java(
    bootstrap: str, topic: str, by_codec: dict[str, list[dict[str, Any]]], workdir: Path
) -> None:
    """Compile JsonLinesProducer against the Kafka distribution's jars and run it once."""
    assert shutil.which("javac"), "javac missing: install openjdk-17-jdk-headless (make deps)"
    jars_dir = ensure_kafka_jars()
    jars = [str(jar) for pattern in JAVA_JARS for jar in sorted(jars_dir.glob(pattern))]
    assert len(jars) == len(JAVA_JARS), f"missing jars in {jars_dir}: {jars}"
    jars += [str(jar) for pattern in JAVA_JARS_OPTIONAL for jar in jars_dir.glob(pattern)]
    classes = workdir / "classes"
    classes.mkdir(parents=True)
    classpath = ":".join(jars)
    compiled = subprocess.run(
        ["javac", "-d", str(classes), "-cp", classpath, str(JAVA_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    files = []
    for codec, documents in by_codec.items():
        lines = workdir / f"{codec}.jsonl"
        lines.write_bytes(jsonl(documents))
        files.append(f"{codec}={lines}")
    ran = subprocess.run(
        ["java", "-cp", f"{classes}:{classpath}", "JsonLinesProducer", bootstrap, topic, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def read_json(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of `topic`, decoded (in-process: the CLI's `tail` costs an
    interpreter start and an idle timeout per read)."""
    return asyncio.run(_read_json(bootstrap, topic))


async def _read_json(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,  # every partition, no group
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        documents: list[dict[str, Any]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                documents += [orjson.loads(record.value or b"null") for record in records]
        return documents
    finally:
        await consumer.stop()


def eventually_read(
    bootstrap: str, topic: str, enough: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Outputs become visible when the worker commits their batch's transaction."""
    return eventually(lambda: read_json(bootstrap, topic), enough)


async def batch_codecs(bootstrap: str, topic: str, partition: int = 0) -> Counter[str]:
    """How the partition's record batches are compressed, as stored by the broker: proof
    that a producer's `compression.type` was really used (each batch's header says it)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        request = FetchRequest(
            0, 1, FETCH_MAX_BYTES, 0, [(topic, [(partition, 0, FETCH_MAX_BYTES)])]
        )
        response: Any = await client.send(leader, request)
    finally:
        await client.close()
    codecs: Counter[str] = Counter()
    for _, partitions in response.topics:
        for *_, raw in partitions:
            records = MemoryRecords(raw)
            while records.has_next():
                batch: Any = records.next_batch()
                codecs[codec_name(batch.compression_type)] += 1
    return codecs


def worker_env(bootstrap: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    """Production mode, one input partition (null keys land anywhere; one partition keeps
    each producer's order, so its breaker sees what `publish`'s does), topics created."""
    return breaker_env(
        bootstrap,
        prefix,
        tmp_path,
        clock_interval_s="0",
        GUARDSTREAM_MODE="production",
        GUARDSTREAM_INPUT_PARTITIONS="1",
    )


def without_vendor(record: dict[str, Any], vendor: str) -> dict[str, Any]:
    """A decision with its producer's vendor name taken out, to compare across producers."""
    text = orjson.dumps(record).decode().replace(vendor, "<vendor>")
    comparable: dict[str, Any] = orjson.loads(text)
    for identity in ("alert_id", "fingerprint"):  # hashes of the vendor label
        comparable.pop(identity, None)
    return comparable


def test_librdkafka_and_java_batches_in_every_codec_decide_like_guardstream_publish(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = worker_env(bootstrap_servers, topic_prefix, tmp_path)
    topic = f"{topic_prefix}tool-invocations"
    sent: dict[str, list[dict[str, Any]]] = {"publish": invocations("publish")}
    with running_worker(env, tmp_path / "worker") as worker:
        publish(env, sent["publish"])
        for codec in LIBRDKAFKA_CODECS:
            vendor = f"librdkafka-{codec}"
            sent[vendor] = invocations(vendor)
            produce_librdkafka(bootstrap_servers, topic, codec, sent[vendor])
        java = {codec: invocations(f"java-{codec}") for codec in JAVA_CODECS}
        produce_java(bootstrap_servers, topic, java, tmp_path / "java")
        sent |= {f"java-{codec}": documents for codec, documents in java.items()}

        events = sum(len(documents) for documents in sent.values())
        assert worker.wait_for(ACCEPTED, events) == events, worker.log_tail()
        assert worker.total(DEAD_LETTERED) == 0
        assert worker.alive()

    # Every producer's batches were compressed as asked (librdkafka's "none" and publish's
    # aiokafka batches are plain), so the worker really decoded each codec.
    codecs = asyncio.run(batch_codecs(bootstrap_servers, topic))
    assert set(codecs) == {"none", "gzip", "snappy", "lz4", "zstd"}, codecs

    published = eventually_read(
        bootstrap_servers, f"{topic_prefix}breaker-state", lambda s: len(s) >= len(sent)
    )
    states = {state["key"]: state for state in published}  # the last per key, as compacted
    assert len(published) == len(states) == len(sent)  # one transition each: closed -> open
    reference = without_vendor(states["publish/chat"], "publish")
    assert reference["state"] == "open"
    for vendor in sent:
        assert without_vendor(states[f"{vendor}/chat"], vendor) == reference, vendor

    alerts = eventually_read(
        bootstrap_servers, f"{topic_prefix}alerts", lambda a: len(a) >= len(sent)
    )
    by_vendor = {alert["labels"]["vendor"]: alert for alert in alerts}
    assert sorted(by_vendor) == sorted(sent)  # one breaker_open each, no more
    reference_alert = without_vendor(by_vendor["publish"], "publish")
    for vendor, alert in by_vendor.items():
        assert without_vendor(alert, vendor) == reference_alert, vendor


@pytest.fixture
def no_codec_library(tmp_path: Path) -> Path:
    """A PYTHONPATH entry where `import cramjam` fails: the worker runs as on a machine
    installed without the codec extras (aiokafka.codec then reports lz4 as unavailable)."""
    shim = tmp_path / "no-cramjam"
    (shim / "cramjam").mkdir(parents=True)
    (shim / "cramjam" / "__init__.py").write_text(
        'raise ImportError("cramjam hidden by the test: no codec library installed")\n'
    )
    return shim


def undecodable_alerts(bootstrap: str, prefix: str) -> list[dict[str, Any]]:
    return [
        alert for alert in read_json(bootstrap, f"{prefix}alerts") if alert["kind"] == ALERT_KIND
    ]


def test_a_worker_without_the_codec_library_dead_letters_the_batch_and_moves_on(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path, no_codec_library: Path
) -> None:
    env = worker_env(bootstrap_servers, topic_prefix, tmp_path)
    topic = f"{topic_prefix}tool-invocations"
    worker_env_ = dict(env, PYTHONPATH=f"{no_codec_library}:{env.get('PYTHONPATH', '')}")
    lz4_events = invocations("lz4", successes=0, failures=10)
    produce_librdkafka(bootstrap_servers, topic, "lz4", lz4_events)  # offsets 0-9
    with running_worker(worker_env_, tmp_path / "first") as worker:
        publish(env, invocations("plain", successes=0, failures=5))  # offsets 10-14
        assert worker.wait_for(ACCEPTED, 5) == 5, worker.log_tail()
        assert worker.wait_for(UNDECODABLE, 1) >= 1, worker.log_tail()
        assert worker.alive()
        assert "undecodable record batch" in worker.log_tail(400)

        # The range is dead-lettered, named exactly: topic, partition, offsets, codec, error.
        letters = eventually_read(bootstrap_servers, f"{topic_prefix}dead-letter", bool)
        assert {letter["error_kind"] for letter in letters} == {"undecodable"}
        covered: list[int] = []
        for letter in letters:
            assert (letter["topic"], letter["partition"]) == (topic, 0)
            assert "codec lz4" in letter["error"]
            assert "Libraries for lz4 compression codec not found" in letter["error"]
            first, last = letter["error"].split("offsets ", 1)[1].split(" ", 1)[0].split("-")
            assert int(last) == letter["offset"]
            covered += range(int(first), int(last) + 1)
        assert sorted(covered) == list(range(len(lz4_events)))

        [firing] = eventually(lambda: undecodable_alerts(bootstrap_servers, topic_prefix), bool)
        assert (firing["status"], firing["severity"]) == ("firing", "critical")
        assert firing["labels"]["codec"] == "lz4"
        assert firing["labels"]["topic"] == topic
        assert firing["labels"]["first_offset"] == "0"

        # Decodable records RESOLVE_AFTER_MS of record time later resolve it, once.
        later_ms = int(time.time() * 1000) + RESOLVE_AFTER_MS + 60_000
        produce_librdkafka(
            bootstrap_servers,
            topic,
            "none",
            invocations("later", failures=0, successes=1),
            timestamp_ms=later_ms,
        )
        alerts = eventually(
            lambda: undecodable_alerts(bootstrap_servers, topic_prefix), lambda a: len(a) >= 2
        )
        assert [alert["status"] for alert in alerts] == ["firing", "resolved"]

    # Restarted, still without the library: the committed range is not read again, and the
    # partition's next batch (whose de-duplication warm-up re-reads it) goes through.
    with running_worker(worker_env_, tmp_path / "second") as worker:
        publish(env, invocations("after-restart", successes=1, failures=0))
        assert worker.wait_for(ACCEPTED, 1) == 1, worker.log_tail()
        assert worker.total(UNDECODABLE) == 0
        assert worker.alive()
    assert len(read_json(bootstrap_servers, f"{topic_prefix}dead-letter")) == len(letters)
