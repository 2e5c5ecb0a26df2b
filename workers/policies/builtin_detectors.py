"""Built-in detectors and validators (DESIGN §10): what the classifier finds beyond the
policy's own `detection_patterns`. Pure.

A detector is a few regular expressions that find *candidates* cheaply, and a validator that
decides whether a candidate really is one, so that ordinary data (16-digit ids, epoch
milliseconds and microseconds, "000-00-0000", uuids, hex hashes, versions, dates) is left
alone:

=============  ==============  ==============================================================
detector       finding type    candidates -> validator
=============  ==============  ==============================================================
card_numbers   credit_card     13-19 digits, bare or grouped (Visa, Mastercard, Amex 4-6-5,
                               Diners 4-6-4, 19-digit) -> Luhn; a bare run also needs a known
                               network prefix (IIN), which no epoch timestamp has
ssn_digits     ssn             ``123 45 6789``, and ``123456789`` next to a context word (ssn,
                               social security, tax id...) -> the SSA's rules (area not 000,
                               666 or 9xx, group not 00, serial not 0000)
phone          phone           ``+`` and 7-15 digits (E.164, any country), national formats
                               of `phone_regions` (default US: ``(415) 555-2671``), and bare
                               runs of 10-15 digits next to a context word (phone, mobile,
                               tel...) -> `phonenumbers` says it is a valid number
iban           iban            two letters, two digits and 11-30 letters or digits, compact or
                               in groups of four -> length of its country and mod-97
api_key        api_key         ``sk-``, ``sk_live_``, ``AKIA``/``ASIA``, ``ghp_`` and the
                               other GitHub prefixes, ``github_pat_``, ``xox[baprs]-``,
                               ``AIza``, ``Bearer <token>`` (credential: masked in full)
jwt            jwt             ``eyJ...eyJ...`` -> its header decodes to a JSON object
ip_address     ip_address      IPv4 and IPv6 -> `ipaddress` parses it; loopback and
                               unspecified addresses (127.0.0.1, ::1, 0.0.0.0) are left alone
email_unicode  email           addresses with non-ASCII local parts or domains
email_spelled  email           ``[at]`` / ``(at)`` / ``{at}`` / ``<at>`` and ``[dot]``-style
                               spellings
=============  ==============  ==============================================================

The policy's own patterns are validated by their type too (`validator_for`): the seed's
``ssn`` by the SSA's rules, ``credit_card`` by Luhn, and so on. A context word is looked for
in the key a value is stored under (``{"mobile": 4155552671}``) and in the
`CONTEXT_WINDOW_CHARS` characters before the candidate in the same string (``ssn=123456789``,
a dead-letter reason ``attributes.phone: ... (got 4155552671)``).

Why `phonenumbers` (phonenumberslite, Google's libphonenumber metadata) and nothing else:
which digit strings are valid phone numbers is per-country data (lengths, prefixes, area
codes) that a hand-written pattern cannot hold, and guessing wrong either leaks numbers or
masks every 10-digit id. Luhn, mod-97, the SSA's rules and `ipaddress` are a few lines each,
so IBANs and the rest stay hand-written; Presidio was not taken: it brings spaCy models and
runs recognizers one after another (tens of ms per text), far beyond a per-record budget of
tens of microseconds, and its recognizers are the same regex + checksum idea as here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
import phonenumbers

Validator = Callable[[str], bool]

# How far before a candidate a context word counts, in characters: long enough for a
# dead-letter reason "attributes.mobile: Input should be a valid string (got 4155552671)".
CONTEXT_WINDOW_CHARS = 64

# Regions whose national format phone numbers are recognised when no policy says otherwise.
DEFAULT_PHONE_REGIONS = ("US",)

PII = "class.pii"
CREDENTIAL = "class.credential"


@dataclass(frozen=True, slots=True)
class BuiltinPattern:
    """One candidate pattern of a detector."""

    pattern: str
    type: str
    classification: str
    confidence: str = "high"
    needs_context: bool = False
    """Counts only next to a context word of its type (bare digit runs)."""
    check: Validator | None = None
    """A test of its own, before the validator of its type."""
    flags: int = 0
    """Compiled with these (not IGNORECASE unless asked: sre's prefix scans need case)."""

    def validator(self, phone_regions: tuple[str, ...]) -> Validator | None:
        """Its check and its type's validator, both."""
        by_type = validator_for(self.type, phone_regions)
        check = self.check
        if check is None or by_type is None:
            return check or by_type

        def both(span: str) -> bool:
            return check(span) and by_type(span)

        return both


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    """Its switch under `builtin_detectors` in a classification policy."""
    patterns: tuple[BuiltinPattern, ...]


# --- validators ----------------------------------------------------------------------------


def _ascii_digits(span: str) -> str:
    return "".join(ch for ch in span if "0" <= ch <= "9")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# Card network prefixes (IIN) a bare run of digits must start with: Visa 4, Mastercard 51-55
# and 2221-2720, Amex 34/37, JCB 3528-3589, Diners 300-305/36/38/39, Discover 6011/644-649/65,
# UnionPay 62. Epoch timestamps (1...) and most counters have none of them.
_IIN = re.compile(
    r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|35(?:2[89]|[3-8]\d)|3(?:0[0-5]|[689])|6(?:011|4[4-9]|5|2)"
)


def card_number_valid(span: str) -> bool:
    """13-19 digits with a valid Luhn checksum; written without separators, also a known
    network prefix (a bare digit run is far more often an id or a timestamp)."""
    digits = _ascii_digits(span)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    return len(digits) != len(span) or _IIN.match(digits) is not None


def ssn_valid(span: str) -> bool:
    """The SSA's rules: area not 000, 666 or 900-999, group not 00, serial not 0000."""
    digits = _ascii_digits(span)
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), digits[3:5], digits[5:]
    return area not in (0, 666) and area < 900 and group != "00" and serial != "0000"


# IBAN length per country (ISO 13616 registry).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(span: str) -> bool:
    """The length of its country and the ISO 7064 mod-97 check."""
    compact = span.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii():
        return False
    rotated = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1
    except ValueError:
        return False


def non_ascii(span: str) -> bool:
    """Not ASCII text (what the seed's ASCII-only patterns cannot match)."""
    return not span.isascii()


def ip_address_valid(span: str) -> bool:
    """An IPv4 or IPv6 address other than loopback or unspecified. An IPv6 candidate also
    needs a decimal digit and four hex digits ("db::add" and "be:ef" are words, not hosts)."""
    try:
        address = ipaddress.ip_address(span)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    if address.version == 6:
        hex_digits = sum(ch not in ":." for ch in span)
        return hex_digits >= 4 and any("0" <= ch <= "9" for ch in span)
    return True


def jwt_valid(span: str) -> bool:
    """Its header segment decodes (base64url) to a JSON object."""
    header = span.split(".", 1)[0]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict)


@functools.lru_cache(maxsize=8192)
def phone_valid(span: str, regions: tuple[str, ...]) -> bool:
    """A valid phone number (`phonenumbers`): international with ``+``, national in one of
    `regions`, or a bare run of 11-15 digits that is valid with its country code. Cached:
    parsing costs ~100 us."""
    candidates: list[tuple[str, str | None]] = []
    if span.lstrip().startswith("+"):
        candidates.append((span, None))
    else:
        candidates += [(span, region) for region in regions]
        if span.isdigit() and len(span) >= 11:
            candidates.append(("+" + span, None))
    for text, region in candidates:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def phone_validator(regions: tuple[str, ...]) -> Validator:
    def valid(span: str) -> bool:
        return phone_valid(span, regions)

    return valid


def validator_for(kind: str, phone_regions: tuple[str, ...]) -> Validator | None:
    """The validator of a finding type (also for a policy's own patterns of that type)."""
    if kind == "phone":
        return phone_validator(phone_regions)
    return _VALIDATORS.get(kind)


_VALIDATORS: Mapping[str, Validator] = {
    "credit_card": card_number_valid,
    "ssn": ssn_valid,
    "iban": iban_valid,
    "ip_address": ip_address_valid,
    "jwt": jwt_valid,
}

# --- context words -------------------------------------------------------------------------

# A word starts at a non-letter or at a lower -> upper case change ("customerPhone").
_WORD_START = r"(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
CONTEXT: Mapping[str, re.Pattern[str]] = {
    "ssn": re.compile(
        _WORD_START + r"(?i:ssn|social|soc\.?[ _-]?sec|tax[ _-]?id|taxpayer|itin(?![a-z]))"
    ),
    "phone": re.compile(
        _WORD_START + r"(?i:phone|mobile|msisdn|whatsapp|cell|fax(?![a-z])|sms(?![a-z])"
        r"|tel(?:ephone)?(?![a-z]))"
    ),
}

# --- the detectors -------------------------------------------------------------------------

# Not glued to letters or digits on either side (an id or a hash is one token).
_OPEN = r"(?<![0-9A-Za-z])"
_CLOSE = r"(?![0-9A-Za-z])"
_BARE_OPEN = r"(?<![0-9A-Za-z.+-])"  # a bare digit run: not a decimal or a signed number
_BARE_CLOSE = r"(?![0-9A-Za-z]|\.\d)"


# What may follow "::" in an IPv6 address: groups, or groups and an IPv4 address.
_IPV6_TAIL = (
    r"(?:[0-9A-Fa-f]{1,4}:){0,5}(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}"
)


# A dot of an e-mail address, written or spelled out, and the label after it.
_SPELLED_DOT = r"(?: ?(?:\[dot\]|\(dot\)|\{dot\}|<dot>) ?|\.)[\w-]+"


STRIPE_PREFIXES = ("sk_live", "sk_test", "rk_live", "rk_test")
GITHUB_PREFIXES = ("ghp", "gho", "ghu", "ghs", "ghr")


def _phone_patterns(regions: tuple[str, ...]) -> tuple[BuiltinPattern, ...]:
    patterns = [
        # international: + country code and 6-14 more digits, single separators between
        BuiltinPattern(r"(?<![\w+])\+[1-9](?:[ .()-]{0,2}\d){6,14}" + _CLOSE, "phone", PII),
        # bare digits (a JSON number, a database column): only next to a context word
        BuiltinPattern(_BARE_OPEN + r"\d{10,15}" + _BARE_CLOSE, "phone", PII, "medium", True),
    ]
    if any(phonenumbers.country_code_for_region(r) == 1 for r in regions):
        # North American: (415) 555-2671, 415-555-2671, 415.555.2671 (of 1 415 555 2671,
        # the part after the country code). Digits before the look-behind: sre skips to them.
        patterns.append(
            BuiltinPattern(
                r"(?:\(\d{3}\) ?|\d{3}(?<![0-9A-Za-z]\d{3})[ .-])\d{3}[ .-]\d{4}" + _CLOSE,
                "phone",
                PII,
            )
        )
    if any(phonenumbers.country_code_for_region(r) != 1 for r in regions):
        # with a trunk prefix: 020 7946 0958, 030 12345678, 06 12 34 56 78
        patterns.append(
            BuiltinPattern(
                _OPEN + r"\(?0\d{1,4}\)?[ -]?\d{2,4}(?:[ -]\d{2,4}){1,3}" + _CLOSE, "phone", PII
            )
        )
    return tuple(patterns)


CARD_NUMBERS = Detector(
    "card_numbers",
    (
        BuiltinPattern(_BARE_OPEN + r"\d{13,19}" + _BARE_CLOSE, "credit_card", PII),
        # 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4; one separator throughout (spelled out,
        # not a back-reference, so that the gate reads the shapes off the pattern)
        BuiltinPattern(
            r"\d{4}(?<![0-9A-Za-z]\d{4})(?:"
            + "|".join(
                rf"{sep}\d{{4}}{sep}\d{{4}}{sep}\d{{4}}(?:{sep}\d{{3}})?|{sep}\d{{6}}{sep}\d{{4,5}}"
                for sep in "- "
            )
            + ")"
            + _CLOSE,
            "credit_card",
            PII,
        ),
    ),
)

SSN_DIGITS = Detector(
    "ssn_digits",
    (
        BuiltinPattern(_OPEN + r"\d{3} \d{2} \d{4}" + _CLOSE, "ssn", PII),
        BuiltinPattern(_BARE_OPEN + r"\d{9}" + _BARE_CLOSE, "ssn", PII, "medium", True),
    ),
)

IBAN = Detector(
    "iban",
    (
        BuiltinPattern(
            # upper case, as IBANs are printed and sent; the letter first and the
            # look-behind second lets sre skip to capitals (4-7x faster)
            r"[A-Z](?<![0-9A-Za-z][A-Z])[A-Z]\d{2}"
            r"(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?" + _CLOSE,
            "iban",
            PII,
        ),
    ),
)

API_KEY = Detector(
    "api_key",
    # One pattern per character its prefixes need ("-", "_", none), one alternative
    # per prefix: the gate then tests whole prefixes, and only when that character is
    # in the string.
    tuple(
        BuiltinPattern(_OPEN + "(?:" + "|".join(alternatives) + ")", "api_key", CREDENTIAL)
        for alternatives in (
            (
                r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
                r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
            ),
            (
                *(rf"{p}_[A-Za-z0-9]{{16,}}" for p in STRIPE_PREFIXES),
                *(rf"{p}_[A-Za-z0-9]{{36,}}" for p in GITHUB_PREFIXES),
                r"github_pat_[A-Za-z0-9_]{22,}",
            ),
            (
                *(rf"{p}[0-9A-Z]{{16}}{_CLOSE}" for p in ("AKIA", "ASIA")),  # AWS key ids
                r"AIza[0-9A-Za-z_-]{35}",  # Google API keys
                r"(?i:bearer) [A-Za-z0-9._~+/-]{20,}=*",  # an Authorization header
            ),
        )
    ),
)

JWT = Detector(
    "jwt",
    (
        BuiltinPattern(
            _OPEN + r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
            "jwt",
            CREDENTIAL,
        ),
    ),
)

IP_ADDRESS = Detector(
    "ip_address",
    (
        BuiltinPattern(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)", "ip_address", PII),
        # compressed (with "::"), IPv4-mapped included
        BuiltinPattern(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}::(?:"
            + _IPV6_TAIL
            + r")?|::(?:"
            + _IPV6_TAIL
            + r"))(?![\w:])",
            "ip_address",
            PII,
        ),
        # all eight groups
        BuiltinPattern(
            r"(?<![\w:.])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}(?![\w:])",
            "ip_address",
            PII,
        ),
    ),
)

EMAIL_UNICODE = Detector(
    "email_unicode",
    (
        # any address; the validator keeps those the seed's ASCII pattern misses
        BuiltinPattern(
            r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}",
            "email",
            PII,
            check=non_ascii,
        ),
    ),
)

EMAIL_SPELLED = Detector(
    "email_spelled",
    (
        BuiltinPattern(
            # "jane [at] example [dot] org", "jane(at)example.org"
            r"[\w.%+-]+ ?(?:\[at\]|\(at\)|\{at\}|<at>) ?[\w-]+(?:" + _SPELLED_DOT + r")+"
            # "jane@example(dot)org"
            r"|[\w.%+-]+@[\w-]+(?:\.[\w-]+)* ?(?:\[dot\]|\(dot\)|\{dot\}|<dot>) ?[\w-]+"
            r"(?:" + _SPELLED_DOT + r")*",
            "email",
            PII,
            flags=re.IGNORECASE,
        ),
    ),
)


def builtin_detectors(phone_regions: tuple[str, ...]) -> tuple[Detector, ...]:
    """Every built-in detector, in the order their findings are reported (only the phone
    detector's patterns depend on the regions)."""
    return (
        CARD_NUMBERS,
        SSN_DIGITS,
        Detector("phone", _phone_patterns(phone_regions)),
        IBAN,
        API_KEY,
        JWT,
        IP_ADDRESS,
        EMAIL_UNICODE,
        EMAIL_SPELLED,
    )


BUILTIN_DETECTOR_NAMES = tuple(d.name for d in builtin_detectors(DEFAULT_PHONE_REGIONS))
