"""Masking PII/PHI in JSON-like values and text (DESIGN §8, §10). Pure: no I/O, and results
depend only on the policy and the input (the one piece of state is a memo of clean strings).

`Masker(policy).mask(value, path)` walks dicts, lists and tuples and masks every string in
them with the classification policy's patterns; it returns the masked value and one
`Finding` per match: where (a path such as ``payload.labels.user`` or
``attributes.note[2]``), what type, which classification and level, and how it was handled,
never the value. `mask_text` does the same for one string (a log line).

Masking formats (handling per level from the policy: seed pii partial, phi full):

=========  =================  =============================================================
handling   type               masked span
=========  =================  =============================================================
full       any                ``[<LEVEL>:<type>]``, e.g. ``[PHI:medical_record]``
partial    ssn, credit_card   every digit but the last 4 becomes ``*``, separators kept:
                              ``***-**-6789``, ``**** **** **** 4242``, ``************4242``
partial    email              first character of the local part, ``***``, ``@`` and the
                              domain: ``j***@example.com``
partial    any other          all but the last 2 characters become ``*`` (all of them when
                              the span has 4 or fewer)
none       any                left as written (allowed for levels other than pii/phi)
=========  =================  =============================================================

Matches of different patterns that overlap (``MRN: 123-45-6789`` is a medical record whose
number is also an SSN) are masked together as one span, in full, labelled with the strictest
match; each match is still a finding.

What is not masked, on purpose:

* Dict keys. They are schema names (field and label names), not data; masking them would
  also break every reader of the record. Free-form data travels in values (`attributes` is
  str -> str and unknown fields are JSON-encoded into it).
* Numbers, booleans and None. Guardstream's numeric fields are measurements (costs, counts,
  milliseconds); scanning them would turn a 16-digit epoch-microseconds into a "card number".
  A number that is really an identifier arrives as a string (unknown fields are encoded as
  JSON text in `attributes`) and is scanned there.
* Other objects (pydantic models, datetimes, enums that are not str): returned as they are.
  Mask JSON-mode data, i.e. ``model.model_dump(mode="json")``, which is what is written.

Speed (called on every audit record, alert and log line): a string is searched with a
pattern only after passing that pattern's gate, a few tests read off the pattern's parse tree
that cost tens of nanoseconds (long enough? contains "@"? as many ASCII digits as an SSN
has? "mrn" or "patient id" in it?); see "gates" below. Strings found clean are remembered (a
bounded memo of strings without PII: label values repeat from record to record). A value
with nothing to mask is returned as is (the same object), containers included, so the common
case copies nothing. Measured on a 2-core shared box: ~11 us per audit payload of 19 string
fields in a stream (unique ids and timestamps per record), ~19 us with the memo emptied
before every record; searching the same strings once with the seed's patterns joined into
one alternation, without masking anything, took ~25 us.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.audit.classification import (
    PATTERN_FLAGS,
    ClassificationPolicy,
    DetectionPattern,
    Handling,
)

# Strictness of a handling, for overlapping matches and for the summary of a record.
_RANK = {Handling.NONE: 0, Handling.PARTIAL: 1, Handling.FULL: 2}


_DIGIT_TYPES = frozenset({"ssn", "credit_card"})
_KEEP_DIGITS = 4
_KEEP_CHARS = 2


@dataclass(frozen=True, slots=True)
class Finding:
    """One match: where and what, never the value."""

    path: str
    type: str
    classification: str
    level: str
    handling: Handling

    def as_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "type": self.type,
            "classification": self.classification,
            "level": self.level,
            "handling": self.handling.value,
        }


@dataclass(frozen=True, slots=True)
class Masked:
    """A masked value and what was found in it."""

    value: Any
    """A masked copy; the very object passed in when nothing had to change."""
    findings: tuple[Finding, ...]


_Match = tuple[int, int, DetectionPattern, Handling]

# Types never scanned, tested first because they are the most common non-strings.
_SCALARS: frozenset[type] = frozenset({int, float, bool, type(None)})


class Masker:
    """Applies a ClassificationPolicy; build one per policy version and share it (the memo of
    clean strings is its only mutable state, safe to share between threads)."""

    __slots__ = ("_clean", "_gates", "_shortest", "policy")

    def __init__(self, policy: ClassificationPolicy) -> None:
        self.policy = policy
        gates: list[_Gate] = []
        for pattern in policy.patterns:
            need = _gate(pattern)
            entry = (pattern, policy.handling_for(pattern.level))
            chars = None if need.chars is None else tuple(sorted(need.chars))
            words = None if need.words is None else tuple(sorted(need.words))
            search = pattern.regex.search
            gates.append((need.length, chars, words, need.digits, search, entry))
        self._gates = tuple(gates)
        # With no pattern nothing is ever searched: every string is shorter than this.
        self._shortest = min((g[0] for g in gates), default=sys.maxsize)
        # Strings known to match no pattern (a memo, so results do not depend on it): label
        # values repeat from record to record. It holds only strings without PII, by
        # definition; bounded, and emptied when full.
        self._clean: dict[str, None] = {}

    # --- public API ---

    def mask(self, value: Any, path: str = "") -> Masked:
        """Mask every string in `value` (dict / list / tuple / str / other scalars).

        `path` names `value` itself in findings ("payload", "attributes"); children are
        ``path.key`` and ``path[index]``.
        """
        findings: list[Finding] = []
        masked = self._walk(value, path, findings)
        return Masked(masked, tuple(findings))

    def mask_text(self, text: str, path: str = "") -> tuple[str, tuple[Finding, ...]]:
        """One string (a log line, an alert summary): the masked text and its findings."""
        hits = self._hits(text)
        if hits is None:
            return text, ()
        findings: list[Finding] = []
        return self._mask_str(text, hits, path, findings), tuple(findings)

    def sensitive_payload(
        self,
        findings: Sequence[Finding],
        *,
        user: str | None,
        jurisdiction: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The payload of an ``aud.data.sensitive`` record for `findings` (not empty).

        Carries the seed's required fields: `classification` and `handling_method` of the
        strictest finding (the one whose level's rule is strictest: phi before pii with the
        seed's rules), `jurisdiction` (given, or the regulations of every classification
        found, sorted), `user` (masked: it is one of the seed's pii_fields); then every
        classification found and the findings themselves (paths, types, levels; never
        values). There is no `data_sample`, by design.
        """
        if not findings:
            raise ValueError("sensitive_payload needs at least one finding")
        rule = self.policy.handling_for
        strictest = max(findings, key=lambda f: (_RANK[rule(f.level)], _RANK[f.handling]))
        found = sorted({f.classification for f in findings})
        if jurisdiction is None:
            classes = self.policy.classifications
            regulations = {r for cid in found if cid in classes for r in classes[cid].regulations}
            jurisdiction = sorted(regulations)
        masked_user = None if user is None else self.mask_text(user, "user")[0]
        return {
            "classification": strictest.classification,
            "handling_method": strictest.handling.value,
            "jurisdiction": list(jurisdiction),
            "user": masked_user,
            "classifications": found,
            "findings": [f.as_dict() for f in findings],
        }

    # --- walking ---

    def _walk(self, value: Any, path: str, out: list[Finding]) -> Any:
        cls = type(value)
        if cls in _SCALARS:
            return value
        if isinstance(value, str):
            hits = self._hits(value)
            if hits is None:
                return value
            return self._mask_str(value, hits, path, out)
        if cls is dict or isinstance(value, Mapping):
            return self._walk_mapping(value, path, out)
        if isinstance(value, list | tuple):
            return self._walk_sequence(value, path, out)
        return value

    def _walk_mapping(self, value: Mapping[Any, Any], path: str, out: list[Finding]) -> Any:
        find = self._hits
        clean = self._clean
        shortest = self._shortest
        copy: dict[Any, Any] | None = None
        for key, item in value.items():
            cls = type(item)
            if cls is str:
                # _hits' first tests, inlined: most strings stop here.
                if len(item) < shortest or item in clean:
                    continue
                hits = find(item)
                if hits is None:
                    continue
                new = self._mask_str(item, hits, f"{path}.{key}" if path else str(key), out)
            elif cls in _SCALARS:
                continue
            else:
                new = self._walk(item, f"{path}.{key}" if path else str(key), out)
            if new is not item:
                if copy is None:
                    copy = dict(value)
                copy[key] = new
        return value if copy is None else copy

    def _walk_sequence(
        self, value: list[Any] | tuple[Any, ...], path: str, out: list[Finding]
    ) -> Any:
        copy: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            new = self._walk(item, f"{path}[{index}]", out)
            if new is not item:
                if copy is None:
                    copy = list(value)
                copy[index] = new
        if copy is None:
            return value
        return tuple(copy) if isinstance(value, tuple) else copy

    # --- one string ---

    def _hits(self, text: str) -> list[_Entry] | None:
        """The patterns that match somewhere in `text`; None if none does (the hot path)."""
        size = len(text)
        if size < self._shortest or text in self._clean:
            return None
        hits: list[_Entry] | None = None
        ascii_text: bool | None = None
        lower = ""
        digits = -1
        for low, chars, words, need_digits, search, entry in self._gates:
            if size < low:
                continue
            if chars is not None:
                for char in chars:
                    if char in text:
                        break
                else:
                    continue
            if need_digits or words is not None:
                # Digit counts and lower-casing are exact for ASCII text only (under
                # IGNORECASE 'k' also matches the Kelvin sign); other text skips these gates.
                if ascii_text is None:
                    ascii_text = text.isascii()
                if ascii_text:
                    if need_digits:
                        if digits < 0:
                            digits = size - len(text.encode("ascii").translate(None, _DIGITS))
                        if digits < need_digits:
                            continue
                    if words is not None:
                        if not lower:
                            lower = text.lower()
                        for word in words:
                            if word in lower:
                                break
                        else:
                            continue
            if search(text) is not None:
                if hits is None:
                    hits = []
                hits.append(entry)
        if hits is None and size <= _CLEAN_MAX_LEN:
            if len(self._clean) >= _CLEAN_MAX_ENTRIES:
                self._clean.clear()
            self._clean[text] = None
        return hits

    def _mask_str(self, text: str, hits: list[_Entry], path: str, out: list[Finding]) -> str:
        matches: list[_Match] = [
            (m.start(), m.end(), pattern, handling)
            for pattern, handling in hits
            for m in pattern.regex.finditer(text)
            if m.end() > m.start()
        ]
        if not matches:
            return text
        matches.sort(key=lambda m: (m[0], -m[1]))
        parts: list[str] = []
        pos = 0
        i = 0
        while i < len(matches):
            # A cluster: this match and every later one that overlaps the span so far.
            start, end = matches[i][0], matches[i][1]
            j = i + 1
            while j < len(matches) and matches[j][0] < end:
                end = max(end, matches[j][1])
                j += 1
            cluster = _distinct(matches[i:j])
            strictest = max(cluster, key=lambda m: _RANK[m[3]])
            if len(cluster) == 1:
                handling = strictest[3]
                replacement = _replace(text[start:end], strictest[2], handling)
            else:
                handling = Handling.FULL if _RANK[strictest[3]] else Handling.NONE
                replacement = _replace(text[start:end], strictest[2], handling)
            parts.append(text[pos:start])
            parts.append(replacement)
            pos = end
            out.extend(
                Finding(path, m[2].type, m[2].classification, m[2].level, handling) for m in cluster
            )
            i = j
        parts.append(text[pos:])
        return "".join(parts)


def _distinct(cluster: Sequence[_Match]) -> list[_Match]:
    """One match per (span, type, classification): two patterns finding the same thing are
    one finding, the stricter handling kept."""
    best: dict[tuple[int, int, str, str], _Match] = {}
    for m in cluster:
        key = (m[0], m[1], m[2].type, m[2].classification)
        if key not in best or _RANK[m[3]] > _RANK[best[key][3]]:
            best[key] = m
    return list(best.values())


def _replace(span: str, pattern: DetectionPattern, handling: Handling) -> str:
    if handling is Handling.NONE:
        return span
    if handling is Handling.FULL:
        return f"[{pattern.level.upper()}:{pattern.type}]"
    if pattern.type in _DIGIT_TYPES:
        return _keep_last_digits(span)
    if pattern.type == "email" and "@" in span:
        local, _, domain = span.partition("@")
        return f"{local[:1]}***@{domain}"
    keep = _KEEP_CHARS if len(span) > 2 * _KEEP_CHARS else 0
    return "*" * (len(span) - keep) + span[len(span) - keep :]


def _keep_last_digits(span: str) -> str:
    """Digits masked but the last 4 (all of them if there are no more than 4)."""
    digits = sum(ch.isdecimal() for ch in span)
    keep = _KEEP_DIGITS if digits > _KEEP_DIGITS else 0
    masked_up_to = digits - keep
    seen = 0
    chars = []
    for ch in span:
        if ch.isdecimal():
            seen += 1
            chars.append("*" if seen <= masked_up_to else ch)
        else:
            chars.append(ch)
    return "".join(chars)


# --- gates: cheap tests a string must pass before a pattern is searched in it ---------------
#
# A regex search costs 0.2-3 us per short string even when nothing matches (the joined
# alternation of the seed's four patterns is the slowest: it defeats sre's own prefix scans);
# `c in s` costs tens of nanoseconds. So each pattern gets a gate, read off its parse tree:
# the shortest string it can match, characters one of which every match contains (the SSN's
# "-", the email's "@", the medical record's ":"), words one of which every match contains
# ("mrn", "patient id"), and how many ASCII digits every match has (9 for an SSN, 16 for a
# card number). Only a string that passes a pattern's gate is searched with it. A gate only
# ever skips strings the pattern cannot match: a construct the analysis does not know
# contributes nothing to it.

_Entry = tuple[DetectionPattern, Handling]
_Gate = tuple[
    int,
    tuple[str, ...] | None,
    tuple[str, ...] | None,
    int,
    Callable[[str], object | None],
    _Entry,
]

_DIGITS = b"0123456789"
_CLEAN_MAX_LEN = 256
_CLEAN_MAX_ENTRIES = 16_384

# Characters too frequent in ordinary values to make a useful gate.
_COMMON = frozenset(" .-_/,")


@dataclass(frozen=True, slots=True)
class _Need:
    """What every match of a (part of a) pattern contains."""

    length: int = 0
    chars: frozenset[str] | None = None
    """Caseless ASCII characters (not letters), one of which is in every match."""
    words: frozenset[str] | None = None
    """Lower-case ASCII strings, one of which is in every match (case-insensitively)."""
    digits: int = 0
    """ASCII digits in every match of ASCII text."""


_NOTHING = _Need()


def _gate(pattern: DetectionPattern) -> _Need:
    try:
        parser: Any = importlib.import_module("re._parser")
        tree = parser.parse(pattern.pattern, PATTERN_FLAGS)
        need = _sequence(parser, list(tree))
        length = int(tree.getwidth()[0])
    except Exception:  # a private module that changed: no gate, never a wrong one
        return _NOTHING
    return _Need(length, need.chars, need.words, need.digits)


def _sequence(parser: Any, items: list[Any]) -> _Need:
    chars: frozenset[str] | None = None
    words: frozenset[str] | None = None
    digits = 0
    run = ""  # consecutive literal characters: a word every match contains

    for op, av in items:
        if op is parser.LITERAL and chr(av).isascii():
            run += chr(av).lower()
        else:
            if len(run) > 1:  # one character is the `chars` gate's business
                words = _better_words(words, frozenset([run]))
            run = ""
        need = _item(parser, op, av)
        digits += need.digits
        if need.chars is not None and (chars is None or _char_cost(need.chars) < _char_cost(chars)):
            chars = need.chars
        if need.words is not None:
            words = _better_words(words, need.words)
    if len(run) > 1:
        words = _better_words(words, frozenset([run]))
    return _Need(0, chars, words, digits)


def _better_words(current: frozenset[str] | None, new: frozenset[str]) -> frozenset[str]:
    """The more selective word set: longer shortest word, then fewer words."""
    if current is None:
        return new

    def cost(words: frozenset[str]) -> tuple[int, int]:
        return -min(map(len, words)), len(words)

    return new if cost(new) < cost(current) else current


def _char_cost(chars: frozenset[str]) -> tuple[int, int]:
    return len(chars), len(chars & _COMMON)


def _item(parser: Any, op: Any, av: Any) -> _Need:
    if op is parser.LITERAL:
        char = chr(av)
        return _Need(
            chars=frozenset(char) if char.isascii() and not char.isalpha() else None,
            digits=1 if "0" <= char <= "9" else 0,
        )
    if op is parser.IN:
        return _Need(chars=_literal_set(parser, av), digits=1 if _all_digits(parser, av) else 0)
    if op is parser.SUBPATTERN:
        return _sequence(parser, list(av[-1]))
    if op in (parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None)):
        low, _, body = av
        if low < 1:
            return _NOTHING
        need = _sequence(parser, list(body))
        return _Need(chars=need.chars, words=need.words, digits=need.digits * low)
    if op is parser.BRANCH:
        alternatives = [_sequence(parser, list(alt)) for alt in av[1]]
        chars = [a.chars for a in alternatives]
        words = [a.words for a in alternatives]
        return _Need(
            chars=None if None in chars else frozenset().union(*chars),  # type: ignore[arg-type]
            words=None if None in words else frozenset().union(*words),  # type: ignore[arg-type]
            digits=min(a.digits for a in alternatives),
        )
    return _NOTHING


def _literal_set(parser: Any, members: list[Any]) -> frozenset[str] | None:
    """A class made of caseless ASCII literals only (``[-:]``), else None."""
    chars = set()
    for op, av in members:
        if op is not parser.LITERAL:
            return None
        char = chr(av)
        if not char.isascii() or char.isalpha():
            return None
        chars.add(char)
    return frozenset(chars) or None


def _all_digits(parser: Any, members: list[Any]) -> bool:
    """A class that matches digits only (``\\d``, ``[0-9]``): one ASCII digit in ASCII text."""
    if not members:
        return False
    for op, av in members:
        if op is parser.CATEGORY and av is parser.CATEGORY_DIGIT:
            continue
        if op is parser.RANGE and 48 <= av[0] <= av[1] <= 57:
            continue
        if op is parser.LITERAL and 48 <= av <= 57:
            continue
        return False
    return True
