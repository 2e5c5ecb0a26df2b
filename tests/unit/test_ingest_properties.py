"""Property: whatever bytes arrive, ingest -> dead letter or event -> input audit never raises.

Generated record values (hostile members in otherwise plausible events, duplicate keys,
truncations, flipped bytes, random bytes) go through the worker's path without Kafka: the
ingest stage, the input audit entries of every audit level, masked and sealed. Every record
ends as exactly one accepted event or one dead letter, and `replay --input`'s decoder gives the
same verdict with the same reason.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import ToolInvocation
from schemas.stream import StreamEvent
from workers.audit.chain import AuditChain
from workers.audit.inputs import input_entries
from workers.audit.sealing import seal_masked
from workers.batching.records import RawBatch, StoredRecord
from workers.errors import InvalidEventError
from workers.ingest.input_lines import decode_event
from workers.ingest.stage import IngestStage
from workers.ingest.validate import Refusal, check_value, validate_records
from workers.masking.masker import default_masker
from workers.settings import AuditLevel

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000

PLAUSIBLE: dict[str, Any] = {
    "event_id": "e1",
    "ts": TS_MS,
    "vendor": "openai",
    "tool": "chat",
    "status": "error",
    "error_type": "503",
    "duration_ms": 12.5,
    "tokens_in": 3,
    "cost_usd": "0.0021",
    "attributes": {"region": "eu"},
}


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


HOSTILE = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e309",
    b"-1E400",
    b"true",
    b"false",
    b"null",
    b"-0",
    b"1e-400",
    b"18446744073709551616",
    b"1" + b"0" * 4400,
    b'"9999-12-31T23:59:59-00:01"',
    b'"0001-01-01T00:00:00+00:01"',
    b'"9999-12-31T23:59:59Z"',
    b"253402300800000",
    b"-62135596800001",
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"a\\u0000b"',
    b'"\xed\xa0\x80"',
    b'"\xff"',
    b'"x\x01"',
    nested(63),
    nested(64),
    nested(201),
    nested(300),
    b'"' + b"x" * 5000 + b'"',
    b'{"a":{"a":1,"a":2}}',
    b"[" + b",".join([b'"' + b"y" * 1000 + b'"'] * 3) + b"]",
    b'{"' + b"k" * 300 + b'":1}',
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
value_texts = st.one_of(
    st.sampled_from([orjson.dumps(value) for value in PLAUSIBLE.values()]),
    st.sampled_from(HOSTILE),
    json_values.map(orjson.dumps),
)
keys = st.sampled_from([*PLAUSIBLE, "type", "latency_ms", "source", "tokens", "x"]) | st.text(
    max_size=8
)


@st.composite
def objects(draw: st.DrawFn) -> bytes:
    """A JSON object text: mostly the plausible event, some members replaced or added (keys
    may repeat), in compact or spaced formatting."""
    members = {key: orjson.dumps(value) for key, value in PLAUSIBLE.items()}
    pairs = list(members.items())
    for _ in range(draw(st.integers(0, 4))):
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(keys), draw(value_texts)))
    if draw(st.booleans()):  # drop some members
        pairs = [pair for pair in pairs if draw(st.integers(0, 5))]
    separator, colon = draw(st.sampled_from([(b",", b":"), (b", ", b": "), (b",\n  ", b" : ")]))
    return b"{" + separator.join(orjson.dumps(k) + colon + v for k, v in pairs) + b"}"


@st.composite
def values(draw: st.DrawFn) -> bytes | None:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return None
    text = draw(objects())
    if kind == 2:  # truncated
        return text[: draw(st.integers(0, len(text)))]
    if kind == 3:  # one byte flipped
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1 :]
    if kind == 4:
        return orjson.dumps({"type": "clock", "ts": draw(st.sampled_from([TS_MS, "x", 1e300]))})
    return text


records = st.lists(
    st.tuples(values(), st.integers(-(2**63), 2**63 - 1) | st.just(TS_MS)), min_size=1, max_size=6
)


@given(records)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_record_ends_as_one_event_or_one_dead_letter_and_the_audit_seals_it(
    generated: list[tuple[bytes | None, int]],
) -> None:
    batch = [
        StoredRecord(TOPIC, 1, offset, record_ts, b"k", value)
        for offset, (value, record_ts) in enumerate(generated)
    ]
    accepted, rejected = validate_records(batch, ToolInvocation)
    verdicts = [item.record.offset for item in accepted] + [r.record.offset for r in rejected]
    assert sorted(verdicts) == list(range(len(batch)))  # exactly one verdict each
    for item in accepted:
        assert item.document == orjson.loads(item.record.value or b"")

    stage = IngestStage({TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=100)
    result = stage.process(RawBatch(TOPIC, 1, batch))
    assert len(result.accepted) + result.duplicates + len(result.rejected) == len(batch)
    for level in AuditLevel:
        chain = AuditChain("input-p1")
        for entry in input_entries(level, result):
            seal_masked(chain, default_masker(), entry.event_type, **entry.sealing())


def replay_verdict(value: bytes) -> StreamEvent | str:
    """What `replay --input` makes of a line: its event, or the message it prints."""
    try:
        return decode_event(value)
    except InvalidEventError as exc:
        return str(exc)


@given(values())
@settings(max_examples=200, deadline=None)
def test_replay_gives_the_workers_verdict_and_reason(value: bytes | None) -> None:
    if value is None or any(word in value for word in (b'"type"', b'"latency_ms"', b'"source"')):
        return  # lines that name or suggest another topic are read as that topic's records
    verdict = check_value(value, ToolInvocation)
    replayed = replay_verdict(value)
    if isinstance(verdict, Refusal):
        assert isinstance(replayed, str)
        assert verdict.reason in replayed
    else:
        assert replayed == verdict[0]
