"""Fuzz the ingest path: no input may raise out of it (issue 11, part 2).

    python -m bench.fuzz_ingest [--inputs 1000000] [--seed 11] [--batch 500]

Generates record values of every kind a producer (or an attacker) can send -- random bytes,
truncated and bit-flipped events, edge numbers and times, NaN/Infinity, booleans for numbers,
deep nesting, huge strings and records, many attributes, lone surrogates, NUL bytes,
duplicate keys in every formatting, clock ticks and overrides with bad times, JSON that is no
object -- and runs each through the path a worker runs, without Kafka:

- the ingest stage (`IngestStage.process`: validation, dead letters, de-duplication) on the
  input topic the value was made for, in batches of `--batch`;
- the input audit entries of the batch (`input_entries`), at minimal, standard and forensic
  level in turn, each masked and sealed into a chain (`seal_masked`, what `ChainBook.seal`
  runs); an entry that needs the `aud.input.unsealable` note is counted as such;
- `replay --input`'s decoder (`decode_event`) on the same bytes, whose verdict and reason must
  be the worker's for the lines it reads as that topic's records.

Prints crashes (exceptions escaping any of these; must be 0), verdict disagreements between
replay and the worker (must be 0), accepted and refused counts by dead-letter kind and reason
(numbers and quoted values folded), and microseconds per input: of the ingest stage alone
(CPU time of this process: the machine's cores are shared) and of the whole loop.
"""

from __future__ import annotations

import argparse
import random
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.events import INPUT_EVENT_TYPES, CostEvent, InputEvent, LatencyEvent, ToolInvocation
from schemas.limits import MAX_ATTRIBUTES, MAX_EVENT_BYTES, MAX_JSON_DEPTH
from workers.app import tune_garbage_collector
from workers.audit.chain import AuditChain
from workers.audit.inputs import input_chain_id, input_entries, unsealable
from workers.audit.sealing import seal_masked
from workers.batching.records import RawBatch, StoredRecord
from workers.errors import InvalidEventError
from workers.ingest.input_lines import decode_event
from workers.ingest.stage import IngestResult, IngestStage
from workers.ingest.validate import Refusal, check_value
from workers.masking.masker import default_masker
from workers.settings import AuditLevel

T0_MS = 1_795_000_000_000
TOPICS = {f"fuzz.{topic}": model for topic, model in INPUT_EVENT_TYPES.items()}
TOPIC_OF = {model: topic for topic, model in TOPICS.items()}
BASE: dict[type[InputEvent], dict[str, Any]] = {
    ToolInvocation: {
        "vendor": "openai",
        "tool": "chat",
        "model": "gpt-4o",
        "status": "error",
        "error_type": "503",
        "duration_ms": 812.5,
        "tokens_in": 1200,
        "tokens_out": 350,
        "cost_usd": "0.0042",
        "user": "u-17",
        "team": "research",
        "attributes": {"region": "eu-west-1"},
    },
    CostEvent: {"team": "research", "cost_usd": 12.5, "tokens": 900, "source": "billing"},
    LatencyEvent: {"vendor": "openai", "tool": "chat", "latency_ms": 41.5, "kind": "ttfb"},
}


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# Member values no plausible producer sends; each is placed at a known or an unknown field.
HOSTILE: list[bytes] = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e309",
    b"-1E400",
    b"1" + b"0" * 400 + b".0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1" + b"0" * 4299,
    b"1" + b"0" * 5000,
    b"1e-400",
    b"-0",
    b"-0.0",
    b"0.1e1",
    b"true",
    b"false",
    b"null",
    b"[]",
    b"{}",
    b'""',
    b'"1714564800000"',
    b'"9999-12-31T23:59:59-00:01"',
    b'"0001-01-01T00:00:00+00:01"',
    b'"9999-12-31T23:59:59.999999Z"',
    b'"8999-12-31T23:59:59.999Z"',
    b'"1970-01-01T00:00:00Z"',
    b'"1969-12-31T23:59:59.999Z"',
    b'"2024-02-30T00:00:00Z"',
    b'"2024-05-01T12:00:00"',
    b"253402300799999",
    b"253402300800000",
    b"-62135596800000",
    b"-62135596800001",
    b"9007199254740993",
    b"1e20",
    b'"\\ud800"',
    b'"\\udfff"',
    b'"\\udc00\\ud800"',
    b'"\\ud83d\\ude00"',
    b'"\xed\xa0\x80"',
    b'"\xf4\x90\x80\x80"',
    b'"\xc0\xaf"',
    b'"\xff\xfe"',
    b'"a\\u0000b"',
    b'"a\x00b"',
    b'"tab\there"',
    b'"\\u2028\\u2029"',
    b'"\\"quoted\\": 1"',
    nested(MAX_JSON_DEPTH - 2),
    nested(MAX_JSON_DEPTH - 1),
    nested(MAX_JSON_DEPTH),
    nested(201),
    nested(202),
    nested(1100),
    b"[" * 3000,
    b'{"a":' * 80 + b"1" + b"}" * 80,
    b'"' + b"x" * 1024 + b'"',
    b'"' + b"x" * 1025 + b'"',
    b'"' + b"x" * 4097 + b'"',
    b'"' + b"\xc3\xa9" * 30_000 + b'"',
    b'{"a":{"a":1,"a":2}}',
    b'{"' + b"k" * 129 + b'":1}',
    b"[" + b",".join([b"1"] * 5000) + b"]",
    b'"ssn 123-45-6789 mail a@b.co"',
]

TOP_REASONS = 30

KNOWN_KEYS = sorted({key for fields in BASE.values() for key in fields} | {"event_id", "ts"})
KEYS = [*KNOWN_KEYS, "type", "x", "", "k" * 200, "\u00e9", "a:b", "attributes"]
FORMATS = [(b",", b":"), (b", ", b": "), (b",\n  ", b": "), (b" , ", b" : "), (b",\t", b"\t:")]


@dataclass
class Tally:
    inputs: int = 0
    by_maker: dict[str, Counter[str]] = field(default_factory=dict)
    """Per kind of generated input: how many, and their verdicts (accepted, duplicate, kinds)."""
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    entries: int = 0
    notes: int = 0
    crashes: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    stage_s: float = 0.0
    total_s: float = 0.0
    verdicts: dict[int, str] = field(default_factory=dict)
    """Of the batch in hand: offset -> "accepted" or the dead letter's kind."""


class Inputs:
    """Generated record values, each for one input topic's model."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        makers: list[tuple[int, Callable[[type[InputEvent]], bytes | None]]] = [
            (10, self.valid),
            (8, self.random_bytes),
            (8, self.truncated),
            (8, self.flipped),
            (20, self.hostile_member),
            (10, self.duplicate_key),
            (4, self.many_attributes),
            (3, self.huge),
            (5, self.control),
            (3, self.not_an_object),
            (2, self.spliced),
            (1, self.tombstone),
        ]
        self.makers = [make for weight, make in makers for _ in range(weight)]

    def __iter__(self) -> Iterator[tuple[str, type[InputEvent], bytes | None]]:
        models = list(TOPIC_OF)
        while True:
            model = self.rng.choice(models)
            make = self.rng.choice(self.makers)
            yield make.__name__, model, make(model)

    # --- building blocks --------------------------------------------------------------------

    def fields(self, model: type[InputEvent]) -> dict[str, Any]:
        self.n += 1
        rng = self.rng
        ts: Any = T0_MS + self.n
        if rng.random() < 0.5:
            ts = f"2026-11-18T11:06:{self.n % 60:02d}.{self.n % 1000:03d}Z"
        return {"event_id": f"f{self.n}", "ts": ts, **BASE[model]}

    def text(self, members: list[tuple[bytes, bytes]]) -> bytes:
        separator, colon = self.rng.choice(FORMATS)
        return b"{" + separator.join(key + colon + value for key, value in members) + b"}"

    def members(self, model: type[InputEvent]) -> list[tuple[bytes, bytes]]:
        return [(orjson.dumps(k), orjson.dumps(v)) for k, v in self.fields(model).items()]

    # --- makers -----------------------------------------------------------------------------

    def valid(self, model: type[InputEvent]) -> bytes:
        if self.rng.random() < 0.5:
            return orjson.dumps(self.fields(model))
        return self.text(self.members(model))

    def random_bytes(self, model: type[InputEvent]) -> bytes:
        return self.rng.randbytes(self.rng.randrange(0, 300))

    def truncated(self, model: type[InputEvent]) -> bytes:
        text = self.valid(model)
        return text[: self.rng.randrange(0, len(text))]

    def flipped(self, model: type[InputEvent]) -> bytes:
        text = bytearray(self.valid(model))
        for _ in range(self.rng.randrange(1, 4)):
            at = self.rng.randrange(len(text))
            choice = self.rng.random()
            if choice < 0.5:
                text[at] = self.rng.randrange(256)
            elif choice < 0.75:
                del text[at]
            else:
                text.insert(at, self.rng.choice(b'{}[]":,\\0eE-+.ntf \x00\xff'))
        return bytes(text)

    def hostile_member(self, model: type[InputEvent]) -> bytes:
        members = self.members(model)
        value = self.rng.choice(HOSTILE)
        if self.rng.random() < 0.6:  # replace a known field
            at = self.rng.randrange(len(members))
            members[at] = (members[at][0], value)
        else:  # add an unknown (or odd) one
            key = orjson.dumps(self.rng.choice(KEYS))
            members.insert(self.rng.randrange(len(members) + 1), (key, value))
        return self.text(members)

    def duplicate_key(self, model: type[InputEvent]) -> bytes:
        members = self.members(model)
        key, value = self.rng.choice(members)
        again = value if self.rng.random() < 0.3 else self.rng.choice(HOSTILE[:20])
        members.insert(self.rng.randrange(len(members) + 1), (key, again))
        if self.rng.random() < 0.3:  # a duplicate inside attributes
            members.append((b'"attributes"', b'{"a":"1","b":"2","a":"3"}'))
        return self.text(members)

    def many_attributes(self, model: type[InputEvent]) -> bytes:
        fields = self.fields(model)
        count = self.rng.choice([MAX_ATTRIBUTES - 1, MAX_ATTRIBUTES, MAX_ATTRIBUTES + 1, 500])
        extra = {f"k{i}": "v" * self.rng.randrange(0, 40) for i in range(count)}
        if self.rng.random() < 0.5:
            fields.update(extra)  # as unknown top-level fields
        else:
            fields["attributes"] = extra
        return orjson.dumps(fields)

    def huge(self, model: type[InputEvent]) -> bytes:
        fields = self.fields(model)
        size = self.rng.choice([MAX_EVENT_BYTES - 400, MAX_EVENT_BYTES + 1, 1_000_000])
        if self.rng.random() < 0.5:
            fields["event_id"] = "e" * size
        else:  # many values just under the attribute cap
            fields["attributes"] = {f"a{i}": "v" * 1000 for i in range(size // 1010)}
        return orjson.dumps(fields)

    def control(self, model: type[InputEvent]) -> bytes:
        ts = self.rng.choice([str(T0_MS).encode(), *[v for v in HOSTILE if len(v) < 40]])
        if self.rng.random() < 0.5:
            return b'{"type":"clock","ts":' + ts + b"}"
        return (
            b'{"type":"breaker_override","ts":' + ts + b',"vendor":"openai","tool":"chat",'
            b'"action":"' + self.rng.choice([b"reset", b"force_open", b"bogus"]) + b'"}'
        )

    def tombstone(self, model: type[InputEvent]) -> None:
        return None

    def not_an_object(self, model: type[InputEvent]) -> bytes:
        return self.rng.choice([b"[]", b"1", b'"x"', b"null", b"true", b"[{}]", b" ", b"{}"])

    def spliced(self, model: type[InputEvent]) -> bytes:
        return self.valid(model) + self.rng.choice([b"\n", b" ", b"}", b"\x00", self.valid(model)])


def reason_group(reason: str) -> str:
    """The problem a dead-letter reason names, for counting: its first error without the
    field path, with numbers and quoted values folded."""
    first = reason.split("; ", 1)[0].split(" (got ", 1)[0]
    if not first.startswith(("Invalid JSON", "not standard JSON", "duplicate key", "record ")):
        first = first.rsplit(": ", 1)[-1]  # "attributes.a:b: Nested deeper ..." -> the problem
    first = re.sub(r"'[^']*'|`[^`]*`", "'…'", first)
    return re.sub(r"\d+", "N", first)[:100]


def fuzz(inputs: int, seed: int, batch_size: int) -> Tally:
    tally = Tally()
    stage = IngestStage(TOPICS, dedup_horizon_ms=60_000, dedup_max_ids=10_000)
    masker = default_masker()
    chains = {level: AuditChain(input_chain_id(0)) for level in AuditLevel}
    levels = list(AuditLevel)
    pending: dict[str, list[StoredRecord]] = {topic: [] for topic in TOPICS}
    makers: dict[int, str] = {}  # offset -> what made the value
    started = time.process_time()
    generated = iter(Inputs(seed))
    for n in range(inputs):
        maker, model, value = next(generated)
        makers[n] = maker
        topic = TOPIC_OF[model]
        records = pending[topic]
        records.append(StoredRecord(topic, 0, n, T0_MS + n, b"k", value))
        if len(records) == batch_size or n == inputs - 1:
            for name, batch in pending.items():
                if batch:
                    run_batch(tally, stage, RawBatch(name, 0, batch), masker, chains, levels)
                    for record in batch:
                        verdict = tally.verdicts.pop(record.offset, "duplicate")
                        tally.by_maker.setdefault(makers.pop(record.offset), Counter())[
                            verdict
                        ] += 1
                    batch.clear()
    tally.total_s = time.process_time() - started
    return tally


def run_batch(
    tally: Tally,
    stage: IngestStage,
    batch: RawBatch,
    masker: Any,
    chains: dict[AuditLevel, AuditChain],
    levels: list[AuditLevel],
) -> None:
    tally.inputs += len(batch)
    started = time.process_time()
    try:
        result = stage.process(batch)
    except Exception:
        tally.stage_s += time.process_time() - started
        tally.crashes.append(f"ingest stage: {traceback.format_exc(limit=3)}")
        return
    tally.stage_s += time.process_time() - started
    for item in result.accepted:
        tally.accepted[type(item.event).__name__] += 1
        tally.verdicts[item.record.offset] = "accepted"
    tally.duplicates += result.duplicates
    for rejected in result.rejected:
        letter = rejected.dead_letter
        tally.refused[(str(letter.error_kind), reason_group(letter.error))] += 1
        tally.verdicts[rejected.record.offset] = str(letter.error_kind)
    level = levels[batch.records[0].offset // len(batch) % len(levels)]
    seal_entries(tally, result, level, masker, chains[level])
    agree_with_replay(tally, batch)


def seal_entries(
    tally: Tally, result: IngestResult, level: AuditLevel, masker: Any, chain: AuditChain
) -> None:
    try:
        entries = input_entries(level, result)
    except Exception:
        tally.crashes.append(f"input_entries({level}): {traceback.format_exc(limit=3)}")
        return
    for entry in entries:
        tally.entries += 1
        try:
            seal_masked(chain, masker, entry.event_type, **entry.sealing())
        except (ValueError, TypeError) as exc:  # the sink notes it (`seal_or_note`)
            tally.notes += 1
            try:
                seal_masked(chain, masker, **_as_kwargs(unsealable(entry, exc)))
            except Exception:
                tally.crashes.append(f"sealing a note: {traceback.format_exc(limit=3)}")
        except Exception:
            tally.crashes.append(f"sealing {entry.event_type}: {traceback.format_exc(limit=3)}")


def _as_kwargs(entry: Any) -> dict[str, Any]:
    return {"event_type": entry.event_type, **entry.sealing()}


def agree_with_replay(tally: Tally, batch: RawBatch) -> None:
    model = TOPICS[batch.topic]
    for record in batch.records:
        value = record.value
        if value is None:
            continue
        try:
            event = decode_event(value)
        except InvalidEventError as exc:
            event, refusal_text = None, str(exc)
        except Exception:
            tally.crashes.append(f"decode_event: {traceback.format_exc(limit=3)}")
            continue
        if model is not ToolInvocation or any(
            word in value for word in (b'"type"', b'"latency_ms"', b'"source"')
        ):
            continue  # replay reads such a line as another topic's record (or names it)
        verdict = check_value(value, model)
        if isinstance(verdict, Refusal):
            if event is not None or verdict.reason not in refusal_text:
                tally.disagreements.append(repr(value[:120]))
        elif event != verdict[0]:
            tally.disagreements.append(repr(value[:120]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    tune_garbage_collector()  # as the worker runs
    tally = fuzz(args.inputs, args.seed, args.batch)
    accepted = sum(tally.accepted.values())
    refused = sum(tally.refused.values())
    print(f"inputs                {tally.inputs:>12,}   (seed {args.seed})")
    print(f"crashes               {len(tally.crashes):>12,}")
    print(f"replay disagreements  {len(tally.disagreements):>12,}")
    print(f"accepted              {accepted:>12,}   {dict(tally.accepted)}")
    print(f"duplicates            {tally.duplicates:>12,}")
    print(f"refused               {refused:>12,}")
    by_kind: Counter[str] = Counter()
    for (kind, _), count in tally.refused.items():
        by_kind[kind] += count
    for kind, count in by_kind.most_common():
        print(f"  {count:>10,}  {kind}")
    print("refused by reason (first error, values folded):")
    for (kind, reason), count in tally.refused.most_common(TOP_REASONS):
        print(f"  {count:>10,}  {kind:<12} {reason}")
    rest = tally.refused.most_common()[TOP_REASONS:]
    if rest:
        print(f"  {sum(c for _, c in rest):>10,}  ({len(rest)} more reasons)")
    print("by kind of input:")
    for maker, verdicts in sorted(tally.by_maker.items()):
        total = sum(verdicts.values())
        shares = ", ".join(f"{v} {c:,}" for v, c in verdicts.most_common())
        print(f"  {maker:<16} {total:>10,}  {shares}")
    print(f"audit entries sealed  {tally.entries:>12,}   (noted as unsealable: {tally.notes:,})")
    print(f"ingest stage          {tally.stage_s / tally.inputs * 1e6:>12.2f} us per input")
    print(
        f"whole loop            {tally.total_s / tally.inputs * 1e6:>12.2f} us per input "
        "(generation, stage, audit sealing, replay decoder)"
    )
    for crash in tally.crashes[:5]:
        print("CRASH", crash)
    for value in tally.disagreements[:5]:
        print("DISAGREE", value)
    if tally.crashes or tally.disagreements:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
