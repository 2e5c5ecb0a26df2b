"""Input events in the audit trail: what each audit level records, in partition order."""

from __future__ import annotations

import orjson

from tests.support.calls import audited_call, ingest_values
from workers.audit.inputs import DEAD_LETTERED, input_entries
from workers.ingest.stage import IngestResult
from workers.settings import AuditLevel

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000


def call(event_id: str, status: str = "success", **extra: object) -> bytes:
    return audited_call(event_id, TS_MS, status, **extra)


def ingested() -> IngestResult:
    values = [
        call("ok-1"),
        call("bad-1", "error", error_type="503"),
        b"{not json",
        orjson.dumps({"type": "clock", "ts": TS_MS + 1000}),
        call("ok-1"),  # a duplicate: neither counted nor recorded
        call("rejected-1", "rejected"),
    ]
    return ingest_values(TOPIC, 2, values, first_offset=10, ts_ms=TS_MS)


def kinds(level: AuditLevel) -> list[tuple[str, int | None]]:
    return [(e.event_type, e.source.offset) for e in input_entries(level, ingested())]


def test_minimal_records_only_dead_lettered_input() -> None:
    assert kinds(AuditLevel.MINIMAL) == [(DEAD_LETTERED, 12)]


def test_standard_adds_failed_and_rejected_invocations() -> None:
    assert kinds(AuditLevel.STANDARD) == [
        ("aud.tool.invocation", 11),
        (DEAD_LETTERED, 12),
        ("aud.tool.invocation", 15),
    ]


def test_forensic_records_every_accepted_event_and_tick_in_partition_order() -> None:
    assert kinds(AuditLevel.FORENSIC) == [
        ("aud.tool.invocation", 10),
        ("aud.tool.invocation", 11),
        (DEAD_LETTERED, 12),
        ("aud.clock.tick", 13),
        ("aud.tool.invocation", 15),
    ]


def test_an_invocation_record_has_the_seeds_required_fields_and_the_event_as_produced() -> None:
    entry = input_entries(AuditLevel.FORENSIC, ingested())[1]
    payload = entry.payload
    assert {k: payload[k] for k in ("tool_id", "vendor", "cost", "duration_ms", "status")} == {
        "tool_id": "openai/chat",
        "vendor": "openai",
        "cost": "0.0021",
        "duration_ms": 12,
        "status": "error",
    }
    assert payload["tokens_used"] == 7
    assert payload["event"] == orjson.loads(call("bad-1", "error", error_type="503"))
    assert (entry.source.event_id, entry.ts_ms) == ("bad-1", TS_MS)


def test_a_dead_letter_record_says_why_and_where_but_not_the_bytes() -> None:
    (entry,) = input_entries(AuditLevel.MINIMAL, ingested())
    assert entry.payload["error_kind"] == "undecodable"
    assert (entry.payload["partition"], entry.payload["offset"]) == (2, 12)
    assert b"not json" not in orjson.dumps(entry.payload)
