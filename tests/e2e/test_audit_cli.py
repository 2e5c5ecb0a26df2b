"""`guardstream audit verify` / `audit export` against the real broker's audit topic.

Two sealed chains are produced to the audit topic (keyed by chain id, as the workers do);
the trail verifies, a time range exports byte-identically, and a tampered export fails with
exit 6 naming the bad record.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.codec import encode
from schemas.types import Severity, rfc3339_ms
from tests.support.worker_process import cli_env, run_cli
from workers.audit.chain import AuditChain

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
CHAINS = ("breakers-p0", "slos-p1")
PER_CHAIN = 20
POLICY = "c0" * 32
TAMPERED_EXIT = 6


def sealed_records() -> list[tuple[str, bytes]]:
    """(chain id, wire bytes), the chains interleaved; record n of a chain at T0 + n s."""
    chains = [AuditChain(name) for name in CHAINS]
    records: list[tuple[str, bytes]] = []
    for n in range(PER_CHAIN):
        for chain in chains:
            record = chain.seal(
                "aud.breaker.transition",
                ts_ms=T0_MS + n * 1000,
                severity=Severity.WARNING,
                policy_version=POLICY,
                payload={"breaker_key": "openai:chat", "to": "open", "n": n, "note": "é ü"},
            )
            records.append((chain.chain_id, encode(record)))
    return records


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for chain_id, value in records:
            await producer.send(topic, key=chain_id.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


def verify(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli(["audit", "verify", "--json", "--no-progress", *args], env, timeout=120)
    return result.returncode, orjson.loads(result.stdout), result.stderr.decode()


def test_the_audit_trail_verifies_exports_a_range_and_a_tampered_export_fails(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = cli_env(bootstrap_servers, topic_prefix)
    created = run_cli(["topics", "create"], env)
    assert created.returncode == 0, created.stderr.decode()
    records = sealed_records()
    asyncio.run(produce(bootstrap_servers, f"{topic_prefix}audit", records))

    code, summary, stderr = verify(env)
    assert code == 0, stderr
    assert summary["ok"] is True
    assert summary["records"] == len(records)
    assert set(summary["chains"]) == set(CHAINS)
    assert all(
        c["first_seq"] == 0 and c["last_seq"] == PER_CHAIN - 1 for c in summary["chains"].values()
    )

    # Records 5..14 of each chain, byte-identical to what was produced.
    export = tmp_path / "range.jsonl"
    start, end = rfc3339_ms(T0_MS + 5000), str(T0_MS + 14_000)  # RFC 3339 and epoch ms
    exported = run_cli(
        ["audit", "export", "--from", start, "--to", end, "--no-progress", str(export)], env
    )
    assert exported.returncode == 0, exported.stderr.decode()
    lines = export.read_bytes().splitlines()
    produced = {value for _, value in records}
    assert all(line in produced for line in lines)
    documents = [orjson.loads(line) for line in lines]
    for chain_id in CHAINS:
        seqs = [d["seq"] for d in documents if d["chain"] == chain_id]
        assert seqs == list(range(5, 15)), chain_id

    code, summary, stderr = verify(env, "--input", str(export), "--from", start)
    assert code == 0, stderr
    assert summary["records"] == len(lines) == 2 * 10
    # The same range straight from the topic.
    code, topic_summary, stderr = verify(env, "--from", start, "--to", end)
    assert code == 0, stderr
    assert topic_summary["chains"] == summary["chains"]
    assert sorted(summary["anchors"]) == [f"{chain} anchored at seq 5" for chain in CHAINS]
    # Without --from a range file is not a complete trail: its chains miss seqs 0-4.
    code, summary, _ = verify(env, "--input", str(export))
    assert code == TAMPERED_EXIT
    assert summary["findings_by_kind"] == {"missing": 2}
    code, summary, stderr = verify(env, "--input", str(export), "--anchored")
    assert code == 0, stderr

    # One edited byte in a payload: exit 6, the record named.
    victim = next(i for i, d in enumerate(documents) if (d["chain"], d["seq"]) == (CHAINS[1], 9))
    edited = list(lines)
    edited[victim] = edited[victim].replace(b'"n":9', b'"n":8')
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join(line + b"\n" for line in edited))
    code, summary, stderr = verify(env, "--input", str(tampered), "--from", start)
    assert code == TAMPERED_EXIT
    first = summary["first_bad"]
    assert (first["kind"], first["chain"], first["seq"], first["record_id"]) == (
        "edited",
        CHAINS[1],
        9,
        f"{CHAINS[1]}:9",
    )
    assert first["where"] == f"line {victim + 1}"
    assert f"{CHAINS[1]}:9" in stderr

    # A deleted line: the next record of that chain reports it missing.
    deleted = tmp_path / "deleted.jsonl"
    deleted.write_bytes(b"".join(line + b"\n" for i, line in enumerate(lines) if i != victim))
    code, summary, _ = verify(env, "--input", str(deleted), "--from", start)
    assert code == TAMPERED_EXIT
    first = summary["first_bad"]
    assert (first["kind"], first["chain"], first["seq"]) == ("missing", CHAINS[1], 10)
    assert "seq 9" in first["message"]
