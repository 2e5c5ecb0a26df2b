"""Built-in detectors, validators, context words, numbers and keys (issue 11 part 4), and the
classification policy fields that switch detectors off (`builtin_detectors`) and choose the
national phone formats (`phone_regions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.errors import ConfigError
from workers.masking.masker import Masker, default_masker
from workers.policies.builtin_detectors import BUILTIN_DETECTOR_NAMES
from workers.policies.classification import Handling, load_classification_policy

MASKER = default_masker()


def policy_file(tmp_path: Path, **spec: Any) -> Path:
    path = tmp_path / "data_classification.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# raw, detector, masked form (built-in policy: pii partial, credential full)
FOUND = [
    ("3782 822463 10005", "card_numbers", "**** ****** *0005"),
    ("378282246310005", "card_numbers", "***********0005"),
    ("ssn 123 45 6789", "ssn_digits", "ssn *** ** 6789"),
    ("ssn=123456789", "ssn_digits", "ssn=*****6789"),
    ("call +1 (415) 555-2671", "phone", "call +* (***) ***-2671"),
    ("+44 20 7946 0958", "phone", "+** ** **** 0958"),
    ("(415) 555-2671", "phone", "(***) ***-2671"),
    ("415.555.2671", "phone", "***.***.2671"),
    ("mobile: 4155552671", "phone", "mobile: ******2671"),
    ("DE89 3704 0044 0532 0130 00", "iban", "*************************00"),
    ("GB82WEST12345698765432", "iban", "********************32"),
    ("key sk-proj-abcdefghijklmnopqrstuvwx", "api_key", "key [CREDENTIAL:api_key]"),
    ("AKIAIOSFODNN7EXAMPLE", "api_key", "[CREDENTIAL:api_key]"),
    ("ghp_" + "a1B2" * 9, "api_key", "[CREDENTIAL:api_key]"),
    ("xoxb-123456789012-abcdefABCDEF", "api_key", "[CREDENTIAL:api_key]"),
    (
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
        "api_key",
        "Authorization: [CREDENTIAL:api_key]",
    ),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl", "jwt", "[CREDENTIAL:jwt]"),
    ("from 203.0.113.7:443", "ip_address", "from *********.7:443"),
    ("2001:db8::8a2e:370:7334", "ip_address", "*********************34"),
    ("jörg.müller@bücher.de", "email_unicode", "j***@bücher.de"),
    ("jane [at] example [dot] org", "email_spelled", "*" * 25 + "rg"),
    ("jane@example(dot)com", "email_spelled", "j***@example(dot)com"),
]

# benign look-alikes: no detector may take them
BENIGN = [
    "000-00-0000",  # no SSN has area 000
    "666-12-3456",
    "1733500000000000",  # epoch microseconds: no card network starts with 1
    "1733500000000",  # epoch milliseconds
    "4242 4242 4242 4241",  # fails Luhn
    "3f2a9c1e-7b4d-4e2a-9c1e-7b4d4e2a9c1e",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "DE89 3704 0044 0532 0130 01",  # wrong IBAN checksum
    "127.0.0.1:9092",
    "0.0.0.0",
    "999.1.2.3",
    "db::add",
    "order 123456789",  # nine digits, no context word
    "id 4155552671",  # ten digits, no context word
    "+1 555 555 5555",  # no such area code
    "v1.2.3",
    "2026-12-06T10:00:00.000Z",
    "sk-short",
]


@pytest.mark.parametrize(("raw", "detector", "expected"), FOUND, ids=[f[1] for f in FOUND])
def test_every_built_in_detector_finds_and_masks(raw: str, detector: str, expected: str) -> None:
    masked, findings = MASKER.mask_text(raw, "note")
    assert masked == expected
    assert findings
    patterns = {p.type: p.detector for p in MASKER.policy.builtin_patterns}
    assert {f.type for f in findings} <= {*patterns, "ssn", "email", "credit_card"}
    assert detector in BUILTIN_DETECTOR_NAMES


@pytest.mark.parametrize("text", BENIGN)
def test_validators_and_context_leave_look_alikes_alone(text: str) -> None:
    assert MASKER.mask_text(text) == (text, ())


def test_numbers_are_scanned_as_their_digits() -> None:
    record = {
        "card": 4242424242424242,
        "phone": 4155552671,
        "customerPhone": 14155552671,
        "ssn": 123456789.0,
        "duration_ms": 123456789,  # no context word: a measurement
        "ts_us": 1_733_500_000_000_000,
        "rate": 99.0,
    }
    masked = MASKER.mask(record, "event")
    assert masked.value == {
        "card": "************4242",
        "phone": "******2671",
        "customerPhone": "*******2671",
        "ssn": "*****6789",
        "duration_ms": 123456789,
        "ts_us": 1_733_500_000_000_000,
        "rate": 99.0,
    }
    assert masked.value["rate"] is record["rate"]  # an integral float is returned as is
    assert [f.path for f in masked.findings] == [
        "event.card",
        "event.phone",
        "event.customerPhone",
        "event.ssn",
    ]


def test_masked_keys_that_collide_stay_apart() -> None:
    masked = MASKER.mask({"jane@example.com": 1, "jack@example.com": 2, "j***@example.com~2": 3})
    assert list(masked.value) == ["j***@example.com", "j***@example.com~2", "j***@example.com~2~2"]
    assert list(masked.value.values()) == [1, 2, 3]


def test_policy_switches_a_detector_off_and_says_so(tmp_path: Path) -> None:
    policy = load_classification_policy(
        policy_file(tmp_path, builtin_detectors={"ip_address": False, "phone": True})
    )
    assert policy.switched_off == ("ip_address",)
    assert any("builtin_detectors.ip_address: switched off" in note for note in policy.notes)
    masker = Masker(policy)
    assert masker.mask_text("from 203.0.113.7")[0] == "from 203.0.113.7"
    assert masker.mask_text("(415) 555-2671")[0] == "(***) ***-2671"


def test_bad_switches_and_regions_name_the_path(tmp_path: Path) -> None:
    path = policy_file(
        tmp_path, builtin_detectors={"ip": False, "iban": "no"}, phone_regions=["US", "XX"]
    )
    with pytest.raises(ConfigError) as info:
        load_classification_policy(path)
    message = str(info.value)
    assert f"{path}: builtin_detectors.ip: unknown detector (known: card_numbers," in message
    assert f"{path}: builtin_detectors.iban: must be true or false, not 'no'" in message
    assert f"{path}: phone_regions: must be ISO 3166 region codes" in message


def test_phone_regions_choose_national_formats(tmp_path: Path) -> None:
    uk = "020 7946 0958"
    assert MASKER.mask_text(uk) == (uk, ())  # default: US national formats only
    masker = Masker(load_classification_policy(policy_file(tmp_path, phone_regions=["US", "GB"])))
    assert masker.mask_text(uk)[0] == "*** **** 0958"


def test_credentials_are_masked_in_full_and_never_left_as_written(tmp_path: Path) -> None:
    assert MASKER.policy.handling_for("credential") is Handling.FULL
    spec = {"handling_rules": {"masking": {"credential": "none"}}}
    with pytest.raises(ConfigError, match="credential: must be partial or full"):
        load_classification_policy(policy_file(tmp_path, **spec))
