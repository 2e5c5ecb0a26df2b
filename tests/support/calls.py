"""Tool-invocation documents as tests produce them, and raw values through the ingest stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from schemas.events import ToolInvocation
from workers.batching.records import RawBatch, StoredRecord
from workers.ingest.stage import IngestResult, IngestStage


def call_document(
    event_id: str,
    ts: object,
    *,
    vendor: str = "openai",
    tool: str = "chat",
    status: str = "success",
    duration_ms: float = 120,
    **extra: Any,
) -> dict[str, Any]:
    """A tool-invocation as a producer sends it; `ts` as given (RFC 3339 text, epoch
    milliseconds or a datetime), `extra` the optional fields."""
    return {
        "event_id": event_id,
        "ts": ts,
        "vendor": vendor,
        "tool": tool,
        "status": status,
        "duration_ms": duration_ms,
        **extra,
    }


def outcome(failing: bool) -> dict[str, Any]:
    """`status` and `error_type` of a call that fails with a 503, or of a success."""
    if failing:
        return {"status": "error", "error_type": "503"}
    return {"status": "success", "error_type": None}


def audited_call(event_id: str, ts_ms: int, status: str = "success", **extra: Any) -> bytes:
    """A call, encoded, carrying every field the seed audit policy requires of an
    aud.tool.invocation (cost, duration, status, tokens)."""
    document = call_document(
        event_id,
        ts_ms,
        status=status,
        duration_ms=12,
        tokens_in=3,
        tokens_out=4,
        cost_usd="0.0021",
        **extra,
    )
    return orjson.dumps(document)


def ingest_values(
    topic: str, partition: int, values: Sequence[bytes], *, first_offset: int, ts_ms: int
) -> IngestResult:
    """`values` at consecutive offsets of one tool-invocations partition, through a fresh
    ingest stage."""
    records = [
        StoredRecord(topic, partition, first_offset + i, ts_ms, None, value)
        for i, value in enumerate(values)
    ]
    stage = IngestStage({topic: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=100)
    return stage.process(RawBatch(topic, partition, records))
