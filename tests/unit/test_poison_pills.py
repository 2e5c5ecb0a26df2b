"""No record is a poison pill (issue 11, part 2): each reproducer is one row.

Every row goes the whole way a worker takes it -- the ingest stage, the input audit entries of
every audit level, sealed into a chain -- and `replay --input`'s decoder must refuse the same
line with the same reason (or accept the same event).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from schemas.audit import AuditSource
from schemas.dead_letter import DeadLetter, DeadLetterKind, preview_value
from schemas.events import INPUT_EVENT_TYPES, CostEvent, InputEvent, LatencyEvent, ToolInvocation
from schemas.json_text import duplicate_key
from schemas.limits import MAX_EVENT_BYTES, MAX_JSON_DEPTH
from schemas.stream import StreamEvent
from schemas.types import Severity
from tests.support.pipelines import breakers_only
from workers.audit.chain import AuditChain
from workers.audit.inputs import UNSEALABLE, InputEntry, input_entries, seal_or_note
from workers.audit.sealing import seal_masked
from workers.batching.records import RawBatch, StoredRecord
from workers.errors import InvalidEventError
from workers.ingest.input_lines import decode_event
from workers.ingest.stage import IngestResult, IngestStage
from workers.masking.masker import default_masker
from workers.policies.breakers import default_breaker_policy
from workers.replay.run import Replay
from workers.settings import AuditLevel, Mode

TS_MS = 1_795_000_000_000
TOPICS = {f"p.{topic}": model for topic, model in INPUT_EVENT_TYPES.items()}
TOPIC_OF = {model: topic for topic, model in TOPICS.items()}

FIELDS: dict[type[InputEvent], dict[str, Any]] = {
    ToolInvocation: {"vendor": "openai", "tool": "chat", "status": "error", "duration_ms": 12},
    CostEvent: {"cost_usd": "0.5", "source": "billing"},
    LatencyEvent: {"vendor": "openai", "tool": "chat", "latency_ms": 40, "kind": "total"},
}


def event(model: type[InputEvent] = ToolInvocation, **changes: Any) -> bytes:
    document = {"event_id": "e1", "ts": TS_MS, **FIELDS[model], **changes}
    return orjson.dumps(document)


def with_members(model: type[InputEvent], *members: bytes) -> bytes:
    """`event(model)` with raw JSON members appended (what orjson cannot write: NaN, dups)."""
    return event(model)[:-1] + b"," + b",".join(members) + b"}"


def ingest(
    value: bytes | None, model: type[InputEvent] = ToolInvocation, record_ts: int = TS_MS
) -> IngestResult:
    topic = TOPIC_OF[model]
    stage = IngestStage(TOPICS, dedup_horizon_ms=60_000, dedup_max_ids=100)
    record = StoredRecord(topic, 3, 70, record_ts, b"key", value)
    return stage.process(RawBatch(topic, 3, [record]))


def sealed_at_every_level(result: IngestResult) -> None:
    """The input audit path never raises: entries of every level, masked and sealed."""
    for level in AuditLevel:
        chain = AuditChain("input-p3")
        for entry in input_entries(level, result):
            assert seal_masked(chain, default_masker(), entry.event_type, **entry.sealing())


def refused(value: bytes, model: type[InputEvent] = ToolInvocation) -> DeadLetter:
    """The dead letter of `value`, after checking the whole path around it."""
    result = ingest(value, model)
    assert result.accepted == []
    (rejected,) = result.rejected
    sealed_at_every_level(result)
    letter = rejected.dead_letter
    assert (letter.topic, letter.partition, letter.offset) == (TOPIC_OF[model], 3, 70)
    # replay --input refuses the same line, with the same reason.
    with pytest.raises(InvalidEventError) as refusal:
        decode_event(value)
    assert letter.error in str(refusal.value)
    return letter


def accepted(value: bytes, model: type[InputEvent] = ToolInvocation) -> StreamEvent:
    result = ingest(value, model)
    assert result.rejected == []
    (item,) = result.accepted
    sealed_at_every_level(result)
    assert item.document == orjson.loads(value)  # what the forensic trail stores
    assert decode_event(value) == item.event
    return item.event


ALL_MODELS = pytest.mark.parametrize("model", [ToolInvocation, CostEvent, LatencyEvent])

# --- event time at the edge of the range --------------------------------------------------------


@ALL_MODELS
@pytest.mark.parametrize(
    "ts",
    [
        pytest.param("9999-12-31T23:59:59-00:01", id="past-datetime-max-in-utc"),
        pytest.param("0001-01-01T00:00:00+00:01", id="before-datetime-min-in-utc"),
        pytest.param("9999-12-31T23:59:59Z", id="year-9999"),
        pytest.param("1969-12-31T23:59:59.999Z", id="before-1970"),
        pytest.param(253_402_300_800_000, id="epoch-ms-after-9999"),
        pytest.param(-62_135_596_800_001, id="epoch-ms-before-year-1"),
        pytest.param(-1, id="epoch-ms-negative"),
        pytest.param(1e300, id="epoch-ms-huge-float"),
    ],
)
def test_event_times_out_of_range_are_schema_dead_letters(
    model: type[InputEvent], ts: str | float
) -> None:
    letter = refused(event(model, ts=ts), model)
    assert letter.error_kind is DeadLetterKind.SCHEMA
    assert letter.error_fields == ["ts"]


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01"])
def test_a_clock_tick_at_the_edge_is_a_dead_letter_too(ts: str) -> None:
    letter = refused(orjson.dumps({"type": "clock", "ts": ts}))
    assert letter.error_kind is DeadLetterKind.SCHEMA
    assert "ts: Event time should be between 1970-01-01T00:00:00Z and 8999-12-31" in letter.error


@pytest.mark.parametrize("ts", ["1970-01-01T00:00:00Z", "8999-12-31T23:59:59.999+00:00", 0])
def test_the_ends_of_the_event_time_range_are_accepted(ts: str | int) -> None:
    assert accepted(event(ts=ts))


def test_an_out_of_range_kafka_timestamp_leaves_the_dead_letter_without_one() -> None:
    (rejected,) = ingest(b"{not json", record_ts=2**62).rejected
    assert rejected.dead_letter.record_ts is None


# --- non-standard JSON ------------------------------------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity"]
OVERFLOWING = ["1e309", "-1E400", "1" + "0" * 400 + ".0"]


@ALL_MODELS
@pytest.mark.parametrize("token", NON_FINITE)
def test_nan_and_infinity_in_an_unknown_field_are_refused_at_decode_time(
    model: type[InputEvent], token: str
) -> None:
    letter = refused(with_members(model, b'"extra":' + token.encode()), model)
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert letter.error.startswith("not standard JSON: NaN and Infinity are not JSON numbers")


@pytest.mark.parametrize("number", OVERFLOWING)
def test_numbers_beyond_a_double_are_refused_at_decode_time(number: str) -> None:
    letter = refused(with_members(ToolInvocation, b'"extra":[' + number.encode() + b"]"))
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert "a number beyond the range of a 64-bit float" in letter.error


@pytest.mark.parametrize("token", [*NON_FINITE, *OVERFLOWING])
def test_non_standard_numbers_in_a_duplicated_key_are_refused(token: str) -> None:
    # pydantic-core keeps the last value and never validates the first one.
    value = with_members(ToolInvocation, b'"duration_ms":' + token.encode(), b'"duration_ms":2')
    letter = refused(value)
    assert letter.error.startswith("not standard JSON")


@pytest.mark.parametrize("field", ["duration_ms", "tokens_in", "cost_usd"])
def test_nan_in_a_known_field_is_reported_as_non_standard_json_too(field: str) -> None:
    letter = refused(event()[:-1] + f',"{field}":NaN}}'.encode())
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert "NaN and Infinity are not JSON numbers" in letter.error


def test_the_forensic_trail_stores_the_document_it_was_validated_from() -> None:
    raw = event(retries=2, flags={"a": [1, None]})
    result = ingest(raw)
    (entry,) = input_entries(AuditLevel.FORENSIC, result)
    assert entry.payload["event"] == orjson.loads(raw)


# --- booleans are not numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (ToolInvocation, "duration_ms"),
        (ToolInvocation, "tokens_in"),
        (ToolInvocation, "tokens_out"),
        (ToolInvocation, "cost_usd"),
        (ToolInvocation, "error_type"),
        (CostEvent, "tokens"),
        (CostEvent, "cost_usd"),
        (LatencyEvent, "latency_ms"),
    ],
)
@pytest.mark.parametrize("boolean", [True, False])
def test_booleans_are_refused_where_numbers_belong(
    model: type[InputEvent], field: str, boolean: bool
) -> None:
    letter = refused(event(model, **{field: boolean}), model)
    assert letter.error_kind is DeadLetterKind.SCHEMA
    assert letter.error_fields == [field]
    assert f"(got {str(boolean).lower()})" in letter.error


@pytest.mark.parametrize(("field", "value"), [("tokens_in", "300"), ("duration_ms", "12")])
def test_numeric_strings_are_refused_where_the_contract_says_number(field: str, value: str) -> None:
    assert refused(event(ToolInvocation, **{field: value})).error_fields == [field]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"cost_usd": "0.0042"}, {"cost_usd": "0.0042"}),  # the contract: number or string
        ({"cost_usd": 0.0042}, {"cost_usd": "0.0042"}),
        ({"tokens_in": 300.0}, {"tokens_in": 300}),  # JSON Schema's "integer": no fraction
        ({"duration_ms": 7}, {"duration_ms": 7.0}),
        ({"error_type": 503}, {"error_type": "503"}),
        ({"error_type": 503.0}, {"error_type": "503"}),
    ],
)
def test_numbers_in_their_json_forms_are_still_accepted(
    changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    got = accepted(event(**changes)).model_dump(mode="json")
    assert {key: got[key] for key in expected} == expected


def test_error_codes_beyond_64_bits_are_refused() -> None:
    # orjson (the trail's reader) reads 2**64 as a float: a replay of the trail would see
    # "18446744073709552000" where the worker saw "18446744073709551616".
    letter = refused(with_members(ToolInvocation, b'"error_type":18446744073709551616'))
    assert letter.error_fields == ["error_type"]


# --- duplicate keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [
        pytest.param(with_members(ToolInvocation, b'"vendor":"other"'), "vendor", id="known"),
        pytest.param(with_members(ToolInvocation, b'"x":1', b'"x":1'), "x", id="unknown-same"),
        pytest.param(event(attributes={"a": "1"})[:-2] + b',"a":"2"}}', "a", id="nested"),
        pytest.param(b'{"event_id" : "e1", "ts" : 1, "event_id" : "e2"}', "event_id", id="spaced"),
        pytest.param(
            json.dumps({"event_id": "e\u00e9", "ts": TS_MS}).encode()[:-1] + b', "ts": 1}',
            "ts",
            id="escaped",
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_the_key(value: bytes, key: str) -> None:
    letter = refused(value)
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert letter.error == f"duplicate key {key!r}: each key may appear once per object"
    assert letter.error_fields == [key]


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(orjson.dumps, id="orjson"),
        pytest.param(lambda d: json.dumps(d).encode(), id="json.dumps"),
        pytest.param(lambda d: json.dumps(d, indent=2).encode(), id="indented"),
        pytest.param(lambda d: json.dumps(d, ensure_ascii=True).encode(), id="escaped"),
    ],
)
def test_unique_keys_pass_whatever_the_formatting(encode: Any) -> None:
    document = orjson.loads(event(note='a:b "c": d', attributes={"k:1": "v: é"}))
    raw = encode(document)
    assert duplicate_key(raw, orjson.loads(raw)) is None
    got = accepted(raw)
    assert isinstance(got, ToolInvocation)
    assert got.attributes["k:1"] == "v: é"


# --- nesting ----------------------------------------------------------------------------------


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("levels", [202, 300, 2000])
def test_deep_nesting_has_its_own_reason(levels: int) -> None:
    letter = refused(with_members(ToolInvocation, b'"x":' + nested(levels)))
    assert letter.error_kind is DeadLetterKind.UNDECODABLE
    assert letter.error == f"nested deeper than {MAX_JSON_DEPTH} levels; not parsed"


def test_nesting_past_the_cap_in_an_unknown_field_is_refused_at_the_field() -> None:
    assert accepted(with_members(ToolInvocation, b'"x":' + nested(MAX_JSON_DEPTH - 1)))
    letter = refused(with_members(ToolInvocation, b'"x":' + nested(MAX_JSON_DEPTH)))
    assert letter.error_kind is DeadLetterKind.SCHEMA
    assert letter.error_fields == ["attributes.x"]
    assert f"Nested deeper than {MAX_JSON_DEPTH} levels" in letter.error


# --- size: replay refuses what the worker refuses ---------------------------------------------


def test_replay_refuses_an_oversized_line_with_the_workers_reason() -> None:
    huge = event(note="x" * 10_000_000)
    letter = refused(huge)
    assert letter.error_kind is DeadLetterKind.TOO_LARGE
    replay = Replay(
        breakers_only(default_breaker_policy(Mode.PRODUCTION)),
        dedup_horizon_ms=60_000,
        dedup_max_ids=100,
    )
    small = event()
    exactly_at_cap = small[:-1] + b" " * (MAX_EVENT_BYTES - len(small)) + b"}"
    lines = [huge + b"\n", exactly_at_cap + b"\r\n"]
    assert list(replay.run(enumerate(lines, start=1))) == []
    assert (replay.counts.invalid, replay.counts.events) == (1, 1)
    assert replay.counts.errors == [f"line 1: {letter.error}"]


# --- odd but valid text is accepted -----------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"note": "a\x00b"}, id="nul"),
        pytest.param({"note": "\U0001f600 \u2028"}, id="astral-and-line-separator"),
        pytest.param({"attributes": {"k": "\ud7ff"}}, id="last-before-surrogates"),
    ],
)
def test_unusual_but_valid_strings_are_accepted(changes: dict[str, Any]) -> None:
    assert accepted(event(**changes))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(event()[:-1] + b',"note":"\\ud800"}', id="lone-surrogate-escape"),
        pytest.param(event()[:-1] + b',"note":"\xed\xa0\x80"}', id="surrogate-utf8"),
        pytest.param(event()[:-1] + b',"note":"\xff"}', id="invalid-utf8"),
        pytest.param(b"\xef\xbb\xbf" + event(), id="bom"),
        pytest.param(event()[:40], id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
def test_malformed_text_is_undecodable(value: bytes) -> None:
    assert refused(value).error_kind is DeadLetterKind.UNDECODABLE


# --- the audit sealing path cannot raise either ------------------------------------------------


async def test_an_entry_that_cannot_be_sealed_is_noted_in_its_place() -> None:
    chain = AuditChain("input-p3")

    async def seal(partition: int, event_type: str, **fields: Any) -> list[Any]:
        return seal_masked(chain, default_masker(), event_type, **fields)

    source = AuditSource(topic="p.tool-invocations", partition=3, offset=70, event_id="e1")
    # An audit record holds strings of at most 4096 characters: this payload cannot be sealed.
    entry = InputEntry("aud.tool.invocation", TS_MS, Severity.INFO, {"x": "y" * 5000}, source)
    (note,) = await seal_or_note(seal, 3, entry)
    assert note.event_type == UNSEALABLE
    assert note.payload == {
        "event_type": "aud.tool.invocation",
        "error": "ValidationError",
        "topic": "p.tool-invocations",
        "partition": 3,
        "offset": 70,
    }
    assert (note.seq, chain.seq) == (0, 1)  # the failed entry took no place in the chain


def test_a_huge_integer_in_an_error_is_described_without_converting_it() -> None:
    assert preview_value(10**5000) == "a number of more than 4300 digits"
