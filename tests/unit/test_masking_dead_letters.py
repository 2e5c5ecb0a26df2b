"""Dead letters leave the ingest stage masked (DESIGN §10, issue 11 part 4): reason, error
fields, key and original value, on the dead-letter topic and in the audit trail."""

from __future__ import annotations

import base64

import orjson
import pytest

from schemas.codec import encode
from schemas.events import ToolInvocation
from schemas.limits import MAX_DEAD_LETTER_ORIGINAL_BYTES, MAX_EVENT_BYTES
from workers.audit.inputs import input_entries
from workers.batching.records import RawBatch, StoredRecord
from workers.ingest.dead_letter_masking import masked_bytes
from workers.ingest.stage import IngestStage
from workers.masking.masker import default_masker
from workers.settings import AuditLevel

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000
EMAIL, SSN, CARD, PHONE = "jane.doe@example.com", "123-45-6789", "4242424242424242", 4155552671


def call(**fields: object) -> bytes:
    document = {
        "event_id": "e1",
        "ts": TS_MS,
        "vendor": "openai",
        "tool": "chat",
        "status": "success",
        "duration_ms": 12,
        **fields,
    }
    return orjson.dumps(document)


def rejected_output(value: bytes | None, key: bytes | None = b"openai/chat") -> bytes:
    """Everything the worker writes for one bad record: the dead letter as published (its
    Kafka key and value) and the audit payload of its aud.input.dead_lettered record."""
    stage = IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=100)
    batch = RawBatch(TOPIC, 0, [StoredRecord(TOPIC, 0, 7, TS_MS, key, value)])
    result = stage.process(batch)
    [rejected] = result.rejected
    [entry] = input_entries(AuditLevel.MINIMAL, result)
    letter = orjson.loads(encode(rejected.dead_letter))
    decoded = [base64.urlsafe_b64decode(letter[k] or "") for k in ("original", "original_key")]
    return b"\n".join(
        [
            rejected.record.key or b"",
            encode(rejected.dead_letter),
            *decoded,
            orjson.dumps(entry.payload),
        ]
    )


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        # a short value quoted in the reason
        (call(duration_ms=EMAIL), EMAIL),
        (call(duration_ms=SSN), SSN),
        # an attribute key in the reason and in error_fields
        (call(attributes={EMAIL: 5}), EMAIL),
        # a number under a key that says what it is, quoted as a number
        (call(attributes={"phone": PHONE}), str(PHONE)),
        (call(tokens_in=-1, card=int(CARD)), CARD),
        # not JSON: masked as text, escapes decoded
        (b'{"ssn": 123-45-6789 broken', SSN),
        (b'{"user": "jane.doe\\u0040example.com", broken', EMAIL),
    ],
    ids=[
        "email-in-reason",
        "ssn-in-reason",
        "key",
        "phone-number",
        "card-number",
        "text",
        "escaped",
    ],
)
def test_nothing_detected_leaves_the_stage_unmasked(value: bytes, raw: str) -> None:
    out = rejected_output(value)
    assert raw.encode() not in out
    assert raw.split("@")[0].encode() not in out  # not even an address's local part


def test_the_key_is_masked_where_the_dead_letter_is_published() -> None:
    out = rejected_output(b"{not json", key=EMAIL.encode())
    assert EMAIL.encode() not in out
    assert b"j***@example.com" in out


def test_a_value_straddling_the_cut_is_masked_whole() -> None:
    # The card's first digits fall before the cap, its last ones after it.
    head = b'{"x": "'
    value = head + b"a" * (MAX_DEAD_LETTER_ORIGINAL_BYTES - len(head) - 9) + b" " + CARD.encode()
    value += b'"}' + b" " * MAX_EVENT_BYTES
    out = rejected_output(value)
    assert CARD[:8].encode() not in out.replace(b"a" * 8, b"")


def test_a_clean_dead_letter_is_kept_as_received() -> None:
    stage = IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=100)
    value = call(cost_usd=-1)
    batch = RawBatch(TOPIC, 0, [StoredRecord(TOPIC, 0, 7, TS_MS, b"k", value)])
    [rejected] = stage.process(batch).rejected
    assert rejected.dead_letter.original == value
    assert rejected.record.value is value


def test_masked_json_keeps_the_record_shape_for_repair() -> None:
    found: list[object] = []
    value = call(user=EMAIL, attributes={"note": f"ssn {SSN}"})
    masked = orjson.loads(masked_bytes(default_masker(), value, "original", found))  # type: ignore[arg-type]
    assert masked["user"] == "j***@example.com"
    assert masked["attributes"] == {"note": "ssn ***-**-6789"}
    assert masked["vendor"] == "openai"
    assert masked["duration_ms"] == 12
    assert len(found) == 2
