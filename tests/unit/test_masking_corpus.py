"""Masking against ordinary data (issue 11 part 4): a generated corpus of classified values and
of benign look-alikes, put where producers put them, through the paths that write them.

Placements: a top-level field of the event, an attribute value, an attribute key, JSON nested
in an attribute value, a field whose bad value makes the record a dead letter (the reason
quotes short values), the tool name, a log line, an alert's labels and summary; and, for the
types that travel as digits, a JSON number at the top level, in attributes (a dead letter),
and in nested JSON. Paths: the ingest stage (dead letters masked there), the forensic input
audit record sealed with masking (`input_entries` + `seal_masked`), the dead letter as
published (its value, key and decoded original), `masked_alert`, the log filter.

A *leak* is a classified value found verbatim in what was written. A *false positive* is a
benign value (16-digit ids, epoch milliseconds and microseconds, "000-00-0000", uuids, hashes,
versions, dates...) that did not survive verbatim. Covered types must not leak at all; false
positives stay under 1 %. Print the table with

    .venv/bin/python -m tests.unit.test_masking_corpus

Bare digit runs count as SSNs and phone numbers only next to a context word (a key such as
``phone`` or ``ssn``, or the word before the digits): the corpus puts them so, as producers
name such fields (see `workers.policies.builtin_detectors`).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import random
import string
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import phonenumbers

from schemas.alerts import alert_fingerprint
from schemas.codec import encode
from schemas.events import ToolInvocation
from schemas.types import Severity, rfc3339_ms
from tests.support.alerts import firing_alert
from workers.audit.chain import AuditChain
from workers.audit.inputs import input_entries
from workers.audit.sealing import masked_alert, seal_masked
from workers.batching.records import RawBatch, StoredRecord
from workers.ingest.stage import IngestStage
from workers.masking.log_filter import MaskingLogFilter
from workers.masking.masker import Masker, default_masker
from workers.settings import AuditLevel

TOPIC = "p.tool-invocations"
TS_MS = 1_795_000_000_000
SEED = 11
VALUES_PER_FORM = 2
BENIGN_PER_CATEGORY = 4
MAX_FALSE_POSITIVE_RATE = 0.01


@dataclass(frozen=True, slots=True)
class Value:
    kind: str
    """Finding type for classified values, a category for benign ones."""
    form: str
    raw: str | int
    """What must not (classified) or must (benign) be found in the output."""
    text: str
    """How it is written in text: the value, after a context word when it needs one."""
    key: str = "ref"
    """The key it is stored under as a number."""


# --- classified values ---------------------------------------------------------------------

_NANP_AREAS = (201, 212, 213, 305, 312, 404, 415, 503, 512, 617, 646, 702, 713, 718, 805, 917)
_MOBILE_REGIONS = ("GB", "DE", "FR", "IN", "BR", "AU", "MX", "JP")
_FIRST = ("jane", "john", "maria", "li", "omar", "anna", "pierre", "sven")
_LAST = ("doe", "smith", "garcia", "wang", "haddad", "kowalska", "dubois", "berg")
_UNICODE = ("jörg.müller", "zoë", "ñandú", "françois", "dvořák", "søren", "łukasz", "björk")
_IDN = ("bücher.de", "exämple.com", "correo.es", "müller.at")
_DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "example.co.uk")
# Countries whose BBAN is all digits, and its length (ISO 13616 registry).
_BBAN_DIGITS = {"DE": 18, "ES": 20, "AT": 16, "BE": 12, "PL": 24, "FI": 14, "PT": 21, "NO": 11}


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _alnum(
    rng: random.Random, count: int, alphabet: str = string.ascii_letters + string.digits
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def _luhn_valid(digits: str) -> bool:
    """Written out here, not imported: the corpus must not share the code it measures."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return next(body + d for d in string.digits if _luhn_valid(body + d))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10_000):04d}"


def _nanp(rng: random.Random) -> str:
    while True:
        number = f"{rng.choice(_NANP_AREAS)}{rng.randrange(200, 1000)}{_digits(rng, 4)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, "US")):
            return number


def _mobile(rng: random.Random) -> phonenumbers.PhoneNumber:
    region = rng.choice(_MOBILE_REGIONS)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = str(example.national_number)
    while True:
        candidate = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{_digits(rng, 3)}")
        if phonenumbers.is_valid_number(candidate):
            return candidate


def _iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_BBAN_DIGITS))
    bban = _digits(rng, _BBAN_DIGITS[country])
    rotated = bban + "".join(str(int(ch, 36)) for ch in country) + "00"
    return f"{country}{98 - int(rotated) % 97:02d}{bban}"


def _jwt(rng: random.Random) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(document)).rstrip(b"=").decode()

    header = part({"alg": "HS256", "typ": "JWT"})
    claims = part({"sub": _digits(rng, 8), "name": rng.choice(_FIRST)})
    return f"{header}.{claims}.{_alnum(rng, 43, string.ascii_letters + string.digits + '-_')}"


def _grouped(digits: str, sizes: tuple[int, ...], separator: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(digits[start : start + size])
        start += size
    return separator.join(parts)


def classified(rng: random.Random) -> list[Value]:
    """`VALUES_PER_FORM` values of every covered type and form."""
    out: list[Value] = []
    for _ in range(VALUES_PER_FORM):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        ssn = _ssn(rng)
        dashed_ssn = f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"
        visa, amex = _card(rng, "4", 16), _card(rng, rng.choice(["34", "37"]), 15)
        master = _card(rng, rng.choice(["51", "52", "53", "54", "55"]), 16)
        nanp, mobile = _nanp(rng), _mobile(rng)
        e164 = phonenumbers.format_number(mobile, phonenumbers.PhoneNumberFormat.E164)
        spaced = phonenumbers.format_number(mobile, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        iban = _iban(rng)
        v6 = ":".join(f"{rng.randrange(1, 0xFFFF):x}" for _ in range(8))
        out += [
            Value("ssn", "dashed", dashed_ssn, dashed_ssn),
            Value(
                "ssn",
                "spaced",
                ssn[:3] + " " + ssn[3:5] + " " + ssn[5:],
                ssn[:3] + " " + ssn[3:5] + " " + ssn[5:],
            ),
            Value("ssn", "bare", ssn, f"SSN {ssn}"),
            Value("ssn", "number", int(ssn), f"ssn={ssn}", key="ssn"),
            Value(
                "email",
                "ascii",
                f"{first}.{last}@{rng.choice(_DOMAINS)}",
                f"{first}.{last}@{rng.choice(_DOMAINS)}",
            ),
            Value("email", "unicode-local", f"{rng.choice(_UNICODE)}@{rng.choice(_DOMAINS)}", ""),
            Value("email", "unicode-domain", f"{first}@{rng.choice(_IDN)}", ""),
            Value("email", "spelled-at", f"{first} [at] example [dot] org", ""),
            Value("email", "spelled-dot", f"{first}.{last}@example(dot)com", ""),
            Value("credit_card", "visa-bare", visa, visa),
            Value("credit_card", "visa-spaced", _grouped(visa, (4, 4, 4, 4), " "), ""),
            Value("credit_card", "mastercard-dashed", _grouped(master, (4, 4, 4, 4), "-"), ""),
            Value("credit_card", "amex-4-6-5", _grouped(amex, (4, 6, 5), " "), ""),
            Value("credit_card", "amex-bare", amex, amex),
            Value("credit_card", "number", int(visa), visa),
            Value("phone", "nanp-parens", f"({nanp[:3]}) {nanp[3:6]}-{nanp[6:]}", ""),
            Value("phone", "nanp-dashed", f"{nanp[:3]}-{nanp[3:6]}-{nanp[6:]}", ""),
            Value("phone", "nanp-dotted", f"{nanp[:3]}.{nanp[3:6]}.{nanp[6:]}", ""),
            Value("phone", "e164", e164, e164),
            Value("phone", "international", spaced, spaced),
            Value("phone", "bare", nanp, f"phone {nanp}"),
            Value("phone", "number", int(nanp), f"mobile: {nanp}", key="phone"),
            Value("phone", "number-e164", int(e164[1:]), f"tel {e164[1:]}", key="mobile"),
            Value("iban", "compact", iban, iban),
            Value("iban", "grouped", " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), ""),
            Value("api_key", "openai", "sk-proj-" + _alnum(rng, 40), ""),
            Value(
                "api_key",
                "aws",
                "AKIA" + _alnum(rng, 16, string.ascii_uppercase + string.digits),
                "",
            ),
            Value("api_key", "github", "ghp_" + _alnum(rng, 36), ""),
            Value("api_key", "slack", f"xoxb-{_digits(rng, 11)}-{_alnum(rng, 24)}", ""),
            Value("api_key", "stripe", "sk_live_" + _alnum(rng, 24), ""),
            Value("jwt", "jwt", _jwt(rng), ""),
            Value(
                "ip_address",
                "ipv4",
                ".".join(str(rng.randrange(n)) for n in (224, 256, 256, 255)).lstrip("0.")
                or "1.1.1.1",
                "",
            ),
            Value("ip_address", "ipv6", v6, v6),
            Value(
                "ip_address",
                "ipv6-compressed",
                f"2001:db8::{rng.randrange(1, 0xFFFF):x}:{rng.randrange(1, 0xFFFF):x}",
                "",
            ),
            Value("medical_record", "mrn", f"MRN: {_digits(rng, 7)}", ""),
        ]
    return [v if v.text else Value(v.kind, v.form, v.raw, str(v.raw), v.key) for v in out]


# --- benign look-alikes --------------------------------------------------------------------


def benign(rng: random.Random) -> list[Value]:
    """Values ordinary telemetry is full of, which no detector may take for classified data."""
    out: list[Value] = []
    for _ in range(BENIGN_PER_CATEGORY):
        epoch_ms = rng.randrange(1_600_000_000_000, 1_900_000_000_000)
        epoch_us = epoch_ms * 1000 + rng.randrange(1000)
        id16 = str(rng.randrange(10**15, 10**16))
        values: list[tuple[str, str | int]] = [
            ("id-16-digits", id16),
            ("id-16-digits-number", int(id16)),
            ("epoch-ms", str(epoch_ms)),
            ("epoch-ms-number", epoch_ms),
            ("epoch-us", str(epoch_us)),
            ("epoch-us-number", epoch_us),
            ("epoch-s-number", epoch_ms // 1000),
            ("zero-ssn", "000-00-0000"),
            ("uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
            ("sha256", f"{rng.getrandbits(256):064x}"),
            ("sha1", f"{rng.getrandbits(160):040x}"),
            ("semver", f"{rng.randrange(10)}.{rng.randrange(30)}.{rng.randrange(100)}"),
            (
                "version-v",
                f"v{rng.randrange(5)}.{rng.randrange(20)}.{rng.randrange(50)}-rc.{rng.randrange(9)}",
            ),
            (
                "date",
                f"20{rng.randrange(10, 40)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            ),
            ("timestamp", rfc3339_ms(epoch_ms)),
            ("model", rng.choice(["gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "o1-mini"])),
            ("price", f"{rng.randrange(1000)}.{rng.randrange(100):02d}"),
            ("http-status", rng.choice(["200", "404", "429", "503"])),
            ("order-8-digits", _digits(rng, 8)),
            ("duration-number", rng.randrange(1, 600_000_000)),
            ("tokens-number", rng.randrange(1, 10_000_000)),
            ("ipv4-loopback", "127.0.0.1:9092"),
            ("path", f"/v1/projects/{rng.randrange(10**6)}/runs/{rng.randrange(10**6)}"),
            (
                "words",
                rng.choice(["research", "eu-west-1", "planner agent", "retry after backoff"]),
            ),
        ]
        out += [Value(category, category, raw, str(raw)) for category, raw in values]
    return out


# --- placements: where producers put values, through the paths that write them ----------------


def _event(**fields: object) -> dict[str, object]:
    return {
        "event_id": f"e-{rng_id()}",
        "ts": TS_MS,
        "vendor": "openai",
        "tool": "chat",
        "status": "error",
        "error_type": "500",
        "duration_ms": 12,
        **fields,
    }


_COUNTER = iter(range(10**9))


def rng_id() -> int:
    return next(_COUNTER)


def through_worker(masker: Masker, document: dict[str, object]) -> bytes:
    """What the worker writes for one input record: forensic audit records (masked when
    sealed), and for a refused record its dead letter as published (Kafka key, value and the
    decoded original and key)."""
    value = orjson.dumps(document)
    stage = IngestStage(
        {TOPIC: ToolInvocation}, dedup_horizon_ms=60_000, dedup_max_ids=10, masker=masker
    )
    record = StoredRecord(TOPIC, 0, 1, TS_MS, b"openai/chat", value)
    result = stage.process(RawBatch(TOPIC, 0, [record]))
    chain = AuditChain("input-p0")
    out = [
        encode(record)
        for entry in input_entries(AuditLevel.FORENSIC, result)
        for record in seal_masked(chain, masker, entry.event_type, **entry.sealing())
    ]
    for rejected in result.rejected:
        letter = orjson.loads(encode(rejected.dead_letter))
        out += [rejected.record.key or b"", encode(rejected.dead_letter)]
        out += [base64.urlsafe_b64decode(letter[k] or "") for k in ("original", "original_key")]
    return b"\n".join(out)


def logged(masker: Masker, text: str) -> bytes:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingLogFilter(masker))
    record = logging.LogRecord(
        "guardstream.corpus",
        logging.INFO,
        __file__,
        1,
        "tool %s failed for %s",
        ("lookup", text),
        None,
    )
    handler.handle(record)
    return stream.getvalue().encode()


def alerted(masker: Masker, text: str) -> bytes:
    labels = {"vendor": "openai", "user": text}
    alert = firing_alert(
        "budget_threshold",
        Severity.WARNING,
        labels,
        f"budget of {text} at 80%",
        ts_ms=TS_MS,
        policy_version="0" * 64,
        fingerprint=alert_fingerprint("budget_threshold", labels),
    )
    return encode(masked_alert(masker, alert))


Placement = Callable[[Masker, Value], bytes]

TEXT_PLACEMENTS: dict[str, Placement] = {
    "top-level": lambda m, v: through_worker(m, _event(note=v.text)),
    "scope-field": lambda m, v: through_worker(m, _event(user=v.text)),
    "attribute-value": lambda m, v: through_worker(m, _event(attributes={"note": v.text})),
    "attribute-key": lambda m, v: through_worker(m, _event(attributes={v.text: "yes"})),
    "nested-json": lambda m, v: through_worker(
        m, _event(attributes={"blob": orjson.dumps({"customer": {"info": v.text}}).decode()})
    ),
    "dead-letter": lambda m, v: through_worker(m, _event(duration_ms=v.text)),
    "tool-name": lambda m, v: through_worker(m, _event(tool=f"crm.lookup {v.text}")),
    "log-line": lambda m, v: logged(m, v.text),
    "alert": lambda m, v: alerted(m, v.text),
}
NUMBER_PLACEMENTS: dict[str, Placement] = {
    "number-top-level": lambda m, v: through_worker(m, _event(**{v.key: v.raw})),
    "number-attribute": lambda m, v: through_worker(m, _event(attributes={v.key: v.raw})),
    "number-nested-json": lambda m, v: through_worker(
        m, _event(attributes={"blob": orjson.dumps({"customer": {v.key: v.raw}}).decode()})
    ),
    "number-dead-letter": lambda m, v: through_worker(m, _event(tokens_in=-1, **{v.key: v.raw})),
}


def placements(value: Value) -> dict[str, Placement]:
    return NUMBER_PLACEMENTS if isinstance(value.raw, int) else TEXT_PLACEMENTS


def verbatim(value: Value) -> bytes:
    return str(value.raw).encode()


@dataclass
class Report:
    cases: Counter[str]
    failures: Counter[str]
    examples: list[str]

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def leaks(masker: Masker, values: list[Value]) -> Report:
    """Classified values found verbatim in the output, per type."""
    report = Report(Counter(), Counter(), [])
    for value in values:
        for name, place in placements(value).items():
            report.cases[value.kind] += 1
            if verbatim(value) in place(masker, value):
                report.failures[value.kind] += 1
                report.examples.append(f"{value.kind}/{value.form} in {name}: {value.raw!r}")
    return report


def false_positives(masker: Masker, values: list[Value]) -> Report:
    """Benign values that did not survive verbatim, per category."""
    report = Report(Counter(), Counter(), [])
    for value in values:
        for name, place in placements(value).items():
            report.cases[value.kind] += 1
            if verbatim(value) not in place(masker, value):
                report.failures[value.kind] += 1
                report.examples.append(f"{value.kind} in {name}: {value.raw!r}")
    return report


def corpus(masker: Masker) -> tuple[Report, Report]:
    rng = random.Random(SEED)
    return leaks(masker, classified(rng)), false_positives(masker, benign(rng))


def table(leaked: Report, masked: Report) -> str:
    lines = [f"classified values: {leaked.failed} leaked of {leaked.total} placements"]
    lines += [
        f"  {kind:16s} {leaked.failures[kind]:4d} / {n}" for kind, n in sorted(leaked.cases.items())
    ]
    rate = masked.failed / masked.total
    lines.append(f"benign values: {masked.failed} masked of {masked.total} placements ({rate:.2%})")
    lines += [
        f"  {kind:22s} {masked.failures[kind]:4d} / {n}" for kind, n in sorted(masked.cases.items())
    ]
    return "\n".join(lines)


def test_no_classified_value_leaks_and_few_benign_ones_are_masked() -> None:
    leaked, masked = corpus(default_masker())
    print("\n" + table(leaked, masked))
    assert leaked.total >= 500
    assert masked.total >= 500
    assert leaked.examples == []
    assert masked.failed / masked.total < MAX_FALSE_POSITIVE_RATE, masked.examples


def test_the_corpus_tells_a_leak_from_a_masked_value() -> None:
    """The measure can fail: with no detector every classified value leaks."""
    policy = default_masker().policy
    blind = Masker(dataclasses.replace(policy, patterns=(), builtin_patterns=()))
    sample = classified(random.Random(SEED))[:10]
    leaked = leaks(blind, sample)
    assert leaked.failed == leaked.total


def random_id_rate(count: int = 20_000) -> float:
    """How often a random 16-digit id is taken for a card number (Luhn + network prefix:
    about 3 % by arithmetic; such an id is indistinguishable from a card number)."""
    rng = random.Random(SEED)
    masker = default_masker()
    ids = [str(rng.randrange(10**15, 10**16)) for _ in range(count)]
    return sum(bool(masker.mask_text(f"id {i}")[1]) for i in ids) / count


if __name__ == "__main__":
    print(table(*corpus(default_masker())))
    print(f"random 16-digit ids taken for card numbers: {random_id_rate():.2%}")
