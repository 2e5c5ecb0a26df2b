"""PII/PHI masking (issue 6, DESIGN §8, §10): the classification policy (seed shape, built-in
default, errors naming file + path + value), the Masker over nested values and text, and the
log filter. Throughout: the raw value is absent from every output (masked values, findings,
the aud.data.sensitive payload, log lines)."""

from __future__ import annotations

import io
import logging
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.policy import PolicyDocument, PolicyKind, policy_version
from tests.support.policy_files import ALPHA_SOLVER_SEEDS
from workers.errors import ConfigError
from workers.logs import JsonFormatter
from workers.masking.log_filter import MaskingLogFilter, install_log_masking
from workers.masking.masker import Finding, Masker
from workers.policies.builtin_detectors import CONTEXT_WINDOW_CHARS, luhn_valid
from workers.policies.classification import (
    FILE_STEMS,
    ClassificationPolicy,
    Handling,
    default_classification_policy,
    load_classification_policy,
)

SEED = ALPHA_SOLVER_SEEDS / "data_classification.yaml"

Captured = logging.StreamHandler[io.StringIO]

SEED_POLICY = load_classification_policy(SEED)
MASKER = Masker(SEED_POLICY)

# raw value, type, masked form under the seed's rules (pii partial, phi full)
SAMPLES = [
    ("123-45-6789", "ssn", "***-**-6789"),
    ("john.doe@example.com", "email", "j***@example.com"),
    ("JOHN.DOE@EXAMPLE.COM", "email", "J***@EXAMPLE.COM"),
    ("Mary_Smith+tag@Mail.Example.org", "email", "M***@Mail.Example.org"),
    ("4242 4242 4242 4242", "credit_card", "**** **** **** 4242"),
    ("4242-4242-4242-4242", "credit_card", "****-****-****-4242"),
    ("4242424242424242", "credit_card", "************4242"),
    ("MRN: 12345", "medical_record", "[PHI:medical_record]"),
    ("MRN:98765", "medical_record", "[PHI:medical_record]"),
    ("Patient ID: AB12", "medical_record", "[PHI:medical_record]"),
    ("patient id: xy99", "medical_record", "[PHI:medical_record]"),
]
SAMPLE_IDS = [raw for raw, _, _ in SAMPLES]


def write(tmp_path: Path, spec: Any, name: str = "data_classification.yaml") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_classification_policy(path)
    return str(info.value)


def seed_spec() -> dict[str, Any]:
    spec = yaml.safe_load(SEED.read_text())
    assert isinstance(spec, dict)
    return spec


def assert_absent(raw: str, *outputs: object) -> None:
    """`raw` appears in none of the outputs, however they are rendered."""
    for output in outputs:
        text = output if isinstance(output, str) else repr(output)
        assert raw not in text
        if not isinstance(output, str):
            assert raw.encode() not in orjson.dumps(output, default=repr)


# --- the policy --------------------------------------------------------------------------


def test_seed_loads_with_its_patterns_and_rules() -> None:
    policy = load_classification_policy(SEED.parent)  # a directory: finds the seed's stem
    assert FILE_STEMS[0] == SEED.stem
    assert policy.source == str(SEED)
    assert policy.document.kind is PolicyKind.CLASSIFICATION
    assert policy.version == policy_version(seed_spec())
    assert [(p.type, p.classification, p.level, p.confidence) for p in policy.patterns] == [
        ("ssn", "class.pii", "pii", "high"),
        ("email", "class.pii", "pii", "high"),
        ("credit_card", "class.pii", "pii", "medium"),
        ("medical_record", "class.phi", "phi", "high"),
    ]
    assert dict(policy.handling) == {
        "pii": Handling.PARTIAL,
        "phi": Handling.FULL,
        "confidential": Handling.NONE,
    }
    assert all(p.regex.flags & re.IGNORECASE for p in policy.patterns)
    assert policy.classifications["class.phi"].regulations == ("HIPAA", "HITECH")
    assert policy.notes == ()


def test_default_policy_is_the_seed_built_in() -> None:
    default = default_classification_policy()
    assert default.source == "<built-in>"
    assert [(p.pattern, p.type, p.classification) for p in default.patterns] == [
        (p.pattern, p.type, p.classification) for p in SEED_POLICY.patterns
    ]
    assert dict(default.handling) == dict(SEED_POLICY.handling)
    raw = "reach me at a.b@example.com, ssn 123-45-6789"
    assert Masker(default).mask_text(raw) == MASKER.mask_text(raw)


def test_from_document_round_trip_and_kind_check() -> None:
    again = ClassificationPolicy.from_document(
        PolicyDocument.model_validate_json(SEED_POLICY.document.model_dump_json())
    )
    assert again.version == SEED_POLICY.version
    assert again.patterns == SEED_POLICY.patterns
    wrong = PolicyDocument.from_spec(PolicyKind.BUDGETS, "x", {}, source="x.yaml")
    with pytest.raises(ConfigError, match=re.escape("x.yaml: policy kind must be classification")):
        ClassificationPolicy.from_document(wrong)


def test_bad_regex_names_file_path_and_value(tmp_path: Path) -> None:
    spec = seed_spec()
    spec["detection_patterns"].append(
        {"pattern": "\\bEMP-(\\d{6}", "classification": "class.pii", "type": "employee"}
    )
    path = write(tmp_path, spec)
    message = load_error(path)
    assert message.startswith(f"{path}: detection_patterns[4].pattern: invalid regular expression")
    assert message.endswith(", not '\\\\bEMP-(\\\\d{6}'")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec = seed_spec()
    spec["detection_patterns"] += [
        {"pattern": "x+", "classification": "class.secret", "type": "thing"},
        {"pattern": "a*", "classification": "class.pii", "type": "empty"},
        {"pattern": "y+", "classification": "class.pii", "type": "bad type!"},
    ]
    spec["handling_rules"]["masking"]["phi"] = "none"
    spec["handling_rules"]["masking"]["pii"] = "blur"
    spec["classifications"]["class.pii"]["level"] = "public"
    path = write(tmp_path, spec)
    lines = load_error(path).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    wanted = [
        "detection_patterns[4].classification: unknown classification",
        "'class.secret'",
        "detection_patterns[5].pattern: must not match the empty string, not 'a*'",
        "detection_patterns[6].type: must be a name",
        "handling_rules.masking.phi: must be partial or full (PII/PHI is always masked)",
        "handling_rules.masking.pii: must be one of partial, full, none, not 'blur'",
        "classifications.class.pii.level: must be 'pii'",
    ]
    text = "\n".join(lines)
    for fragment in wanted:
        assert fragment in text


def test_not_a_list_or_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, {"detection_patterns": {"pattern": "x"}, "handling_rules": []})
    message = load_error(path)
    assert f"{path}: detection_patterns: must be a list" in message
    assert f"{path}: handling_rules: must be a mapping, not []" in message


def test_pattern_added_in_a_policy_file_is_applied(tmp_path: Path) -> None:
    spec = seed_spec()
    spec["classifications"]["class.employee"] = {"id": "class.employee", "level": "internal"}
    spec["detection_patterns"] += [
        {"pattern": "\\bEMP-\\d{6}\\b", "classification": "class.pii", "type": "employee_id"},
        {"pattern": "\\bPROJ-[a-z]+\\b", "classification": "class.confidential", "type": "proj"},
        {"pattern": "\\bBADGE\\d{4}\\b", "classification": "class.employee", "type": "badge"},
    ]
    policy = load_classification_policy(write(tmp_path, spec))
    assert [p.type for p in policy.patterns][4:] == ["employee_id", "proj", "badge"]
    # internal has no masking rule: masked in full, and the loader says so
    assert any("'internal' has no masking rule" in note for note in policy.notes)
    masked = Masker(policy).mask(
        {"who": "emp-123456", "project": "PROJ-apollo", "badge": "BADGE0042"}, "payload"
    )
    assert masked.value == {
        "who": "********56",  # other PII types: all but the last 2 characters
        "project": "PROJ-apollo",  # confidential: none, reported but left as written
        "badge": "[INTERNAL:badge]",
    }
    assert [(f.path, f.type, f.handling) for f in masked.findings] == [
        ("payload.who", "employee_id", Handling.PARTIAL),
        ("payload.project", "proj", Handling.NONE),
        ("payload.badge", "badge", Handling.FULL),
    ]


def test_built_in_patterns_are_a_floor_under_a_policy_file(tmp_path: Path) -> None:
    spec = {
        "classifications": {"class.pii": {"level": "pii"}},
        "detection_patterns": [
            {"pattern": "\\bEMP-\\d{6}\\b", "classification": "class.pii", "type": "employee_id"}
        ],
    }
    policy = load_classification_policy(write(tmp_path, spec))
    assert [p.type for p in policy.patterns] == [
        "ssn",
        "email",
        "credit_card",
        "medical_record",
        "employee_id",
    ]
    masked, _ = Masker(policy).mask_text("EMP-123456 MRN: 1 123-45-6789")
    assert masked == "********56 [PHI:medical_record] ***-**-6789"


def test_handling_rules_decide_partial_or_full(tmp_path: Path) -> None:
    spec = seed_spec()
    spec["handling_rules"]["masking"].update({"pii": "full", "phi": "partial"})
    masker = Masker(load_classification_policy(write(tmp_path, spec)))
    text = "ssn 123-45-6789, mail a@b.io, card 4242424242424242, MRN: 12345"
    masked, findings = masker.mask_text(text)
    assert masked == "ssn [PII:ssn], mail [PII:email], card [PII:credit_card], ********45"
    assert [(f.type, f.handling) for f in findings] == [
        ("ssn", Handling.FULL),
        ("email", Handling.FULL),
        ("credit_card", Handling.FULL),
        ("medical_record", Handling.PARTIAL),
    ]


# --- masking values ----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind", "expected"), SAMPLES, ids=SAMPLE_IDS)
def test_every_pattern_is_masked_in_nested_fields_and_attributes(
    raw: str, kind: str, expected: str
) -> None:
    def record_with(value: str) -> dict[str, Any]:
        """A record holding `value` in three places: nested, in a list, in attributes."""
        return {
            "event_type": "aud.tool.invocation",
            "payload": {
                "labels": {"user": value, "tier": "gold"},
                "steps": [{"note": f"see {value} now"}, "plain", 3, None, True],
                "count": 7,
            },
            "attributes": {"free": value, "other": "nothing here"},
        }

    record = record_with(raw)
    masked = MASKER.mask(record)
    assert masked.value == record_with(expected)
    level = "phi" if kind == "medical_record" else "pii"
    handling = Handling.FULL if level == "phi" else Handling.PARTIAL
    assert masked.findings == (
        Finding("payload.labels.user", kind, f"class.{level}", level, handling),
        Finding("payload.steps[0].note", kind, f"class.{level}", level, handling),
        Finding("attributes.free", kind, f"class.{level}", level, handling),
    )
    payload = MASKER.sensitive_payload(masked.findings, user=raw)
    assert_absent(raw, masked.value, masked.findings, payload)
    assert_absent(raw, [f.as_dict() for f in masked.findings])
    # the input is not modified
    assert record["attributes"] == {"free": raw, "other": "nothing here"}


def test_untouched_values_are_returned_as_is() -> None:
    clean = {"a": {"b": ["x", 1, {"c": "cb.vendor.default"}]}, "n": 2.5, "t": ("y", "z")}
    assert MASKER.mask(clean).value is clean
    assert MASKER.mask(clean).findings == ()
    # an epoch in microseconds is a number, not a card: it stays the same object
    for scalar in ("no pii here", 1_733_500_000_000_000, 1.5, None, True):
        assert MASKER.mask(scalar).value is scalar
    mixed = {"clean": clean["a"], "dirty": {"ssn": "123-45-6789"}, "t": ("a@b.io", "y")}
    masked = MASKER.mask(mixed, "payload")
    assert masked.value["clean"] is clean["a"]  # unchanged subtrees are shared, not copied
    assert masked.value["t"] == ("a***@b.io", "y")  # tuples stay tuples
    assert [f.path for f in masked.findings] == ["payload.dirty.ssn", "payload.t[0]"]


def test_keys_of_free_form_maps_are_masked_and_field_names_stay() -> None:
    # A producer's attribute key is data: an address used as a key is still an address.
    record = {"event_id": "e1", "attributes": {"a@b.io": "x", "123-45-6789": "y", "tier": "z"}}
    masked = MASKER.mask(record, "payload")
    assert masked.value == {
        "event_id": "e1",
        "attributes": {"a***@b.io": "x", "***-**-6789": "y", "tier": "z"},
    }
    assert [(f.path, f.type) for f in masked.findings] == [
        ("payload.attributes[key]", "email"),
        ("payload.attributes[key]", "ssn"),
    ]
    assert_absent("a@b.io", masked.value, masked.findings)


def test_several_values_in_one_string_and_overlaps() -> None:
    text = "123-45-6789 / a@b.io / MRN: 123-45-6789 / 1111 2222 3333 4444"
    masked, findings = MASKER.mask_text(text, "summary")
    # the medical record's number is also an SSN: one span, masked in full
    assert masked == "***-**-6789 / a***@b.io / [PHI:medical_record] / **** **** **** 4444"
    assert [(f.path, f.type, f.handling) for f in findings] == [
        ("summary", "ssn", Handling.PARTIAL),
        ("summary", "email", Handling.PARTIAL),
        ("summary", "medical_record", Handling.FULL),
        ("summary", "ssn", Handling.FULL),
        ("summary", "credit_card", Handling.PARTIAL),
    ]
    assert "4-5" not in masked.replace("***-**-6789 /", "")


def test_sensitive_payload_has_the_required_fields_and_no_values() -> None:
    record = {"user": "pat@example.com", "note": "MRN: 12345, ssn 123-45-6789"}
    masked = MASKER.mask(record, "payload")
    payload = MASKER.sensitive_payload(masked.findings, user="pat@example.com")
    assert payload == {
        "classification": "class.phi",
        "handling_method": "full",
        "jurisdiction": ["CCPA", "GDPR", "HIPAA", "HITECH", "PIPEDA"],
        "user": "p***@example.com",
        "classifications": ["class.phi", "class.pii"],
        "findings": [f.as_dict() for f in masked.findings],
    }
    assert payload["findings"][0] == {
        "path": "payload.user",
        "type": "email",
        "classification": "class.pii",
        "level": "pii",
        "handling": "partial",
    }
    for raw in ("pat@example.com", "MRN: 12345", "12345", "123-45-6789"):
        assert_absent(raw, payload, masked.value)
    only_pii = MASKER.sensitive_payload(masked.findings[:1], user=None, jurisdiction=["EU"])
    assert only_pii["classification"] == "class.pii"
    assert only_pii["handling_method"] == "partial"
    assert only_pii["jurisdiction"] == ["EU"]
    with pytest.raises(ValueError, match="at least one finding"):
        MASKER.sensitive_payload([], user="u")


# --- hypothesis: raw never survives, the rest is unchanged -----------------------------------

# Text around the value: no digits, '@' or ':' (so it matches nothing by itself), no
# brackets (no "(at)" spelling), and a separator next to the value that no pattern can absorb.
_FILLER = st.text(alphabet=string.ascii_letters + " ,;!?é", max_size=25)
_SEP = st.sampled_from([" ", ",", ";", "(", ")", "!", "? "])
_DIGIT = "0123456789"


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=_DIGIT, min_size=n, max_size=n)


def _luhn_completed(digits: str) -> str:
    """`digits` and the check digit that makes the whole Luhn-valid."""
    return next(digits + d for d in _DIGIT if luhn_valid(digits + d))


# Valid ones only: an SSN the SSA could issue (area not 000/666/9xx, group not 00, serial
# not 0000), a Visa number with its Luhn digit (the validators refuse the rest, on purpose).
_SSN = st.tuples(
    st.integers(1, 899).filter(lambda area: area != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
).map(lambda t: (f"{t[0]:03d}-{t[1]:02d}-{t[2]:04d}", f"***-**-{t[2]:04d}"))
_CARD = st.tuples(
    _digits(14)
    .map(lambda d: _luhn_completed("4" + d))
    .map(lambda d: [d[0:4], d[4:8], d[8:12], d[12:16]]),
    st.lists(st.sampled_from(["", " ", "-"]), min_size=3, max_size=3),
).map(
    lambda t: (
        t[0][0] + t[1][0] + t[0][1] + t[1][1] + t[0][2] + t[1][2] + t[0][3],
        "****" + t[1][0] + "****" + t[1][1] + "****" + t[1][2] + t[0][3],
    )
)
_ALNUM = string.ascii_letters + _DIGIT
_LOCAL = st.tuples(st.sampled_from(_ALNUM), st.text(alphabet=_ALNUM + "._%+-", max_size=12)).map(
    "".join
)
_DOMAIN = st.tuples(
    st.lists(st.text(alphabet=_ALNUM, min_size=1, max_size=8), min_size=1, max_size=3),
    st.text(alphabet=string.ascii_letters, min_size=2, max_size=6),
).map(lambda t: ".".join([*t[0], t[1]]))
_EMAIL = st.tuples(_LOCAL, _DOMAIN).map(lambda t: (f"{t[0]}@{t[1]}", f"{t[0][0]}***@{t[1]}"))


@st.composite
def _embedded(draw: st.DrawFn) -> tuple[str, str, str, str]:
    raw, expected = draw(st.one_of(_SSN, _CARD, _EMAIL))
    prefix = draw(st.one_of(st.just(""), st.tuples(_FILLER, _SEP).map("".join)))
    suffix = draw(st.one_of(st.just(""), st.tuples(_SEP, _FILLER).map("".join)))
    return prefix, raw, expected, suffix


@settings(max_examples=300, deadline=None)
@given(_embedded())
def test_raw_value_never_survives_and_the_rest_is_unchanged(
    case: tuple[str, str, str, str],
) -> None:
    prefix, raw, expected, suffix = case
    masked, findings = MASKER.mask_text(prefix + raw + suffix)
    assert masked == prefix + expected + suffix
    assert raw not in masked
    assert len(findings) == 1
    assert raw not in repr(findings)
    nested = MASKER.mask({"attributes": {"k": prefix + raw + suffix}, "l": [raw]})
    assert raw.encode() not in orjson.dumps(nested.value)


def detected(policy: ClassificationPolicy, text: str, key: str = "") -> list[tuple[str, str]]:
    """What searching every detector of `policy` finds in `text` (under `key`), the slow way:
    (type, span) of the matches that pass their validator and, where needed, have a context
    word."""
    found = []
    for pattern in policy.detectors:
        for match in pattern.regex.finditer(text):
            context = pattern.context
            before = text[max(0, match.start() - CONTEXT_WINDOW_CHARS) : match.start()]
            if context is not None and not (context.search(key) or context.search(before)):
                continue
            if match.group() and (pattern.validator is None or pattern.validator(match.group())):
                found.append((pattern.type, match.group()))
    return found


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + _DIGIT + " -@.:_", max_size=60))
def test_masked_text_reveals_no_full_match(text: str) -> None:
    """Whatever the text, no span a detector found in it is left in the output."""
    masked, findings = MASKER.mask_text(text)
    for _, span in detected(SEED_POLICY, text):
        if len(span) > 4:
            assert span not in masked
    assert (masked == text) == (not findings)


# --- logs ---------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, Captured]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingLogFilter(MASKER))
    logger = logging.getLogger("guardstream.test.masking")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_log_filter_masks_messages_formatted_with_args(
    captured: tuple[logging.Logger, io.StringIO, Captured],
) -> None:
    logger, stream, _ = captured
    logger.info("user %s paid with %s", "pat@example.com", "4242 4242 4242 4242")
    logger.warning("%(what)s: MRN: %(mrn)s", {"what": "lookup", "mrn": "12345"})
    logger.error("bad format %d", "123-45-6789")  # formatting fails: still masked
    out = stream.getvalue()
    assert "INFO user p***@example.com paid with **** **** **** 4242\n" in out
    assert "WARNING lookup: [PHI:medical_record]\n" in out
    assert "***-**-6789" in out
    for raw in ("pat@example.com", "4242 4242 4242 4242", "12345", "123-45-6789"):
        assert raw not in out


def test_log_filter_masks_exception_text_and_stack(
    captured: tuple[logging.Logger, io.StringIO, Captured],
) -> None:
    logger, stream, handler = captured
    try:
        raise ValueError("no account for pat@example.com (ssn 123-45-6789)")
    except ValueError:
        logger.exception("lookup failed for %s", "Patient ID: AB12")
    logger.info("here", stack_info=True)
    out = stream.getvalue()
    assert "ValueError: no account for p***@example.com (ssn ***-**-6789)" in out
    assert "lookup failed for [PHI:medical_record]" in out
    assert "Stack (most recent call last)" in out
    for raw in ("pat@example.com", "123-45-6789", "AB12"):
        assert raw not in out
    # The JSON formatter never shows the unmasked exception either.
    json_stream = io.StringIO()
    handler.setStream(json_stream)
    handler.setFormatter(JsonFormatter())
    try:
        raise KeyError("pat@example.com")
    except KeyError:
        logger.exception("again %s", "123-45-6789")
    assert "pat@example.com" not in json_stream.getvalue()
    assert "123-45-6789" not in json_stream.getvalue()


def test_a_record_is_masked_once_across_handlers(
    captured: tuple[logging.Logger, io.StringIO, Captured],
) -> None:
    logger, stream, _ = captured
    second = io.StringIO()
    other = logging.StreamHandler(second)
    other.addFilter(MaskingLogFilter(MASKER))
    logger.addHandler(other)
    try:
        logger.info("%s and %s%%", "a@b.io", "x")
    finally:
        logger.removeHandler(other)
    assert stream.getvalue() == "INFO a***@b.io and x%\n"
    assert second.getvalue() == "a***@b.io and x%\n"


def test_install_log_masking_attaches_to_root_handlers_once() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        first = install_log_masking(MASKER)
        second = install_log_masking(Masker(default_classification_policy()))
        assert [f for f in handler.filters if isinstance(f, MaskingLogFilter)] == [second]
        assert first is not second
        logging.getLogger("guardstream.test.child").info("mail %s", "pat@example.com")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for other in root.handlers:
            for f in [f for f in other.filters if isinstance(f, MaskingLogFilter)]:
                other.removeFilter(f)
    assert stream.getvalue() == "mail p***@example.com\n"


# --- gates: the fast path never skips a string a pattern matches ---------------------------

_GATED = [
    *yaml.safe_load(SEED.read_text())["detection_patterns"],
    {"pattern": "(?:ACCT|acct-no)#\\d{6}", "classification": "class.pii", "type": "account"},
    {"pattern": "\\b[0-9]{5}(?:-[0-9]{4})?\\b", "classification": "class.pii", "type": "zip"},
    {"pattern": "\\bK\\d{3}[:;]x", "classification": "class.phi", "type": "kelvin"},
    {"pattern": "(?:[@#]|mrn){2,}s", "classification": "class.phi", "type": "marks"},
]
# One of each built-in detector's finds.
BUILTIN_SAMPLES = [
    "+1 (415) 555-2671",
    "tel 4155552671",
    "415.555.2671",
    "3782 822463 10005",
    "ssn 123456789",
    "123 45 6789",
    "DE89 3704 0044 0532 0130 00",
    "sk-proj-abcdefghijklmnopqrstuvwx",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1" * 18,
    "xoxb-1234567890-abcdef",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "192.0.2.17",
    "2001:db8::8a2e:370:7334",
    "jörg.müller@bücher.de",
    "jane [at] example [dot] org",
    "jane@example(dot)org",
]
_GATE_ALPHABET = string.ascii_letters + _DIGIT + " -@:;#.sK\u212a\u017f\u0130\u0663\u0664"


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> ClassificationPolicy:
    spec = {**seed_spec(), "detection_patterns": _GATED}
    return load_classification_policy(write(tmp_path_factory.mktemp("gated"), spec))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=_GATE_ALPHABET, max_size=12),
            st.sampled_from(["123-45-6789", "a@b.io", "MRN: 7", "acct-no#123456", "k123:x"]),
            st.sampled_from(["4242424242424242", "12345-6789", "\u212a123;x", "@mrn#s"]),
            st.sampled_from(BUILTIN_SAMPLES),
        ),
        max_size=5,
    ).map("".join)
)
def test_gates_never_skip_a_match(gated: ClassificationPolicy, text: str) -> None:
    """What the Masker finds equals what searching every pattern finds (twice: the second
    time from the memo of clean strings)."""
    masker = Masker(gated)
    expected = {kind for kind, _ in detected(gated, text)}
    for _ in range(2):
        _, findings = masker.mask_text(text)
        assert {f.type for f in findings} == expected
