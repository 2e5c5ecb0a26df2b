"""Masking PII/PHI in JSON-like values and text (DESIGN §8, §10). Pure: no I/O, and results
depend only on the policy and the input (the one piece of state is a memo of clean strings).

`Masker(policy).mask(value, path)` walks dicts, lists and tuples and masks every string,
number and dict key in them with the classification policy's detectors (its patterns, then
the built-in detectors of `workers.policies.builtin_detectors`); it returns the masked value and one
`Finding` per match: where (a path such as ``payload.labels.user``, ``attributes.note[2]``
or ``attributes[key]`` for a key), what type, which classification and level, and how it was
handled, never the value. `mask_text` does the same for one string (a log line).

Masking formats (handling per level from the policy: seed pii partial, phi full, built-in
credential full):

=========  ===================  ===========================================================
handling   type                 masked span
=========  ===================  ===========================================================
full       any                  ``[<LEVEL>:<type>]``, e.g. ``[PHI:medical_record]``
partial    ssn, credit_card,    every digit but the last 4 becomes ``*``, separators kept:
           phone                ``***-**-6789``, ``**** **** **** 4242``, ``+* ***-***-2671``
partial    email                first character of the local part, ``***``, ``@`` and the
                                domain: ``j***@example.com``
partial    any other            all but the last 2 characters become ``*`` (all of them when
                                the span has 4 or fewer)
none       any                  left as written (allowed for levels other than pii, phi and
                                credential)
=========  ===================  ===========================================================

A match counts when its pattern's validator accepts it (Luhn for card numbers, the SSA's
rules for SSNs...) and, for a pattern that needs context (bare digit runs), when a context
word is in the key the value is stored under or just before the match
(`workers.policies.builtin_detectors`). Matches of one type that overlap (the seed's card
pattern and the built-in one) are one match over their union. Matches of different types that
overlap (``MRN: 123-45-6789`` is a medical record whose number is also an SSN) are masked
together as one span, in full, labelled with the strictest match; each is still a finding.

Numbers: an int, or a float with an integral value, is scanned as its decimal text
(``4242424242424242`` is a card number, ``{"phone": 4155552671}`` a phone number); when
something is found the number becomes its masked text, a string. Guardstream's own
measurements are not masked by this: the validators refuse timestamps (no card network
starts with 1, no phone number has 13 or 16 digits after its country code) and a bare
9-15 digit run counts as an SSN or phone number only under a key (or after a word) that
says so, which ``duration_ms`` or ``offset`` do not.

Dict keys: keys of free-form maps (`attributes`, labels, a producer's nested objects) are
data and are masked like values; a masked key that collides with another key gets ``~2``,
``~3``... appended. Structural field names (``event_id``, ``duration_ms``...) never match a
detector, so they stay as written.

Booleans, None and other objects (pydantic models, datetimes, enums that are not str) are
returned as they are: mask JSON-mode data, i.e. ``model.model_dump(mode="json")``, which is
what is written.

Speed (called on every audit record, alert and log line): a string is searched with a
pattern only after passing that pattern's gate, a few tests read off the pattern's parse tree
that cost tens of nanoseconds (long enough? contains "@"? as many ASCII digits as an SSN
has? "mrn" or "sk-" in it?), see `workers.masking.gates`; validators run only on regex matches.
Strings and keys found clean are remembered (a bounded memo of strings without anything to
mask, whatever their key: label values and keys repeat from record to record). A value with
nothing to mask is returned as is (the same object), containers included, so the common case
copies nothing. Figures: README (``python -m bench.masking``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.masking.gates import SHAPES, gate_table
from workers.policies.builtin_detectors import CONTEXT_WINDOW_CHARS
from workers.policies.classification import (
    ClassificationPolicy,
    DetectionPattern,
    Handling,
    default_classification_policy,
)

# Strictness of a handling, for overlapping matches and for the summary of a record.
_RANK = {Handling.NONE: 0, Handling.PARTIAL: 1, Handling.FULL: 2}


_DIGIT_TYPES = frozenset({"ssn", "credit_card", "phone"})
_KEEP_DIGITS = 4
_KEEP_CHARS = 2

# Where a finding in a dict key is reported: "<path of the dict>[key]".
KEY_MARK = "[key]"

# Floats at or above this cannot hold an identifier's digits exactly (and print as 1e+19).
_FLOAT_DIGITS_LIMIT = 1e19


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
_Entry = tuple[DetectionPattern, Handling]
# Types never scanned, tested first because they are the most common non-strings.
_SKIPPED: frozenset[type] = frozenset({bool, type(None)})
_NUMBERS: frozenset[type] = frozenset({int, float})

_CLEAN_MAX_LEN = 256
_CLEAN_MAX_ENTRIES = 16_384


class Masker:
    """Applies a ClassificationPolicy; build one per policy version and share it (the memo of
    clean strings is its only mutable state, safe to share between threads)."""

    __slots__ = (
        "_buckets",
        "_clean",
        "_entries",
        "_number_ceiling",
        "_number_floor",
        "_shortest",
        "policy",
    )

    def __init__(self, policy: ClassificationPolicy) -> None:
        self.policy = policy
        table = gate_table([pattern.regex for pattern in policy.detectors])
        self._entries = tuple((p, policy.handling_for(p.level)) for p in policy.detectors)
        self._buckets = table.buckets
        self._shortest = table.shortest
        self._number_floor, self._number_ceiling = table.number_floor, table.number_ceiling
        # Strings known to hold nothing to mask under any key (a memo, so results do not
        # depend on it): label values and keys repeat from record to record. Bounded, and
        # emptied when full.
        self._clean: dict[str, None] = {}

    # --- public API ---

    def mask(self, value: Any, path: str = "") -> Masked:
        """Mask every string, number and key in `value` (dict / list / tuple / scalar).

        `path` names `value` itself in findings ("payload", "attributes"); children are
        ``path.key`` and ``path[index]``, a dict's keys ``path[key]``.
        """
        findings: list[Finding] = []
        masked = self._walk(value, path, findings, "")
        return Masked(masked, tuple(findings))

    def mask_text(self, text: str, path: str = "") -> tuple[str, tuple[Finding, ...]]:
        """One string (a log line, an alert summary): the masked text and its findings."""
        hits = self._hits(text)
        if hits is None:
            return text, ()
        findings: list[Finding] = []
        return self._mask_str(text, hits, path, findings, ""), tuple(findings)

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

    def _walk(self, value: Any, path: str, out: list[Finding], key: str) -> Any:
        """`value` masked; `key`: the dict key it is stored under (context for bare digits)."""
        cls = type(value)
        if cls is str:
            hits = self._hits(value)
            if hits is None:
                return value
            return self._mask_str(value, hits, path, out, key)
        if cls in _NUMBERS:
            return self._number(value, path, out, key)
        if cls in _SKIPPED:
            return value
        if cls is dict or isinstance(value, Mapping):
            return self._walk_mapping(value, path, out)
        if isinstance(value, list | tuple):
            return self._walk_sequence(value, path, out, key)
        return value

    def _walk_mapping(self, value: Mapping[Any, Any], path: str, out: list[Finding]) -> Any:
        scan = self._scan
        clean = self._clean
        shortest = self._shortest
        pairs: list[tuple[Any, Any]] | None = None  # set once something changed
        for index, (key, item) in enumerate(value.items()):
            new_key = key
            if type(key) is str and len(key) >= shortest and key not in clean:
                hits = scan(key)
                if hits is not None:
                    new_key = self._mask_str(key, hits, path + KEY_MARK, out, "")
            cls = type(item)
            if cls is str:
                # _hits' first tests, inlined: most strings stop here.
                if len(item) < shortest or item in clean:
                    new = item
                else:
                    hits = scan(item)
                    new = (
                        item
                        if hits is None
                        else self._mask_str(item, hits, _child(path, new_key), out, key)
                    )
            elif cls in _SKIPPED:
                new = item
            elif cls in _NUMBERS and self._number_floor < item < self._number_ceiling:
                new = item  # _number's first test, inlined: most numbers stop here
            else:
                new = self._walk(item, _child(path, new_key), out, key)
            if pairs is None and (new is not item or new_key is not key):
                pairs = list(value.items())[:index]
            if pairs is not None:
                pairs.append((new_key, new))
        return value if pairs is None else _with_unique_keys(pairs)

    def _walk_sequence(
        self, value: list[Any] | tuple[Any, ...], path: str, out: list[Finding], key: str
    ) -> Any:
        copy: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) in _SKIPPED:
                continue
            new = self._walk(item, f"{path}[{index}]", out, key)
            if new is not item:
                if copy is None:
                    copy = list(value)
                copy[index] = new
        if copy is None:
            return value
        return tuple(copy) if isinstance(value, tuple) else copy

    def _number(self, value: int | float, path: str, out: list[Finding], key: str) -> Any:
        """`value`, or its decimal text masked when a detector finds something in it."""
        if self._number_floor < value < self._number_ceiling:
            return value  # its text is too short for any pattern: not even made
        if type(value) is float:
            if not value.is_integer() or abs(value) >= _FLOAT_DIGITS_LIMIT:
                return value
            text = str(int(value))
        else:
            text = str(value)
        if text in self._clean:
            return value
        hits = self._scan(text)
        if hits is None:
            return value
        masked = self._mask_str(text, hits, path, out, key)
        return value if masked is text else masked

    # --- one string ---

    def _hits(self, text: str) -> list[_Entry] | None:
        """The patterns whose regex matches somewhere in `text`; None if none does (the hot
        path)."""
        if len(text) < self._shortest or text in self._clean:
            return None
        return self._scan(text)

    def _scan(self, text: str) -> list[_Entry] | None:
        """`_hits` for a string already found long enough and not in the memo: the callers
        that test those inline (keys, values, numbers) do not look the string up twice."""
        size = len(text)
        # Digit counts and lower-casing are exact for ASCII text only (\\d also matches other
        # digits, and under IGNORECASE 'k' the Kelvin sign): other text passes those tests.
        ascii_text = text.isascii()
        digits = -1 if ascii_text else size
        shape = b""
        lower = ""
        hits: list[int] | None = None
        for bucket_low, bucket_char, bucket_digits, bucket_shape, gates in self._buckets:
            if size < bucket_low or (bucket_char and bucket_char not in text):
                continue
            if bucket_digits:
                if digits < 0:  # ASCII: the shape is needed from here on, its "0"s are digits
                    shape = text.encode("ascii").translate(SHAPES)
                    digits = shape.count(48)
                if digits < bucket_digits:
                    break  # later buckets need at least as many digits
                if bucket_shape and shape and bucket_shape not in shape:
                    continue
            for low, chars, char, times, words, need_digits, shapes, search, index in gates:
                if size < low or (need_digits and need_digits > digits):
                    continue
                if chars is not None:
                    for any_char in chars:
                        if any_char in text:
                            break
                    else:
                        continue
                if times and text.count(char) < times:
                    continue
                if ascii_text:
                    if shapes is not None:  # only gates that need digits have shapes
                        for one_shape in shapes:
                            if one_shape in shape:
                                break
                        else:
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
                    hits.append(index)
        if hits is None:
            self._remember_clean(text)
            return None
        entries = self._entries
        return [entries[index] for index in sorted(hits)]

    def _remember_clean(self, text: str) -> None:
        if len(text) <= _CLEAN_MAX_LEN:
            if len(self._clean) >= _CLEAN_MAX_ENTRIES:
                self._clean.clear()
            self._clean[text] = None

    def _matches(self, text: str, hits: list[_Entry], key: str) -> tuple[list[_Match], bool]:
        """The validated matches of `hits` in `text` (stored under `key`), and whether any
        regex match was refused for want of context (then the verdict depends on the key)."""
        matches: list[_Match] = []
        needed_context = False
        for pattern, handling in hits:
            validator, context = pattern.validator, pattern.context
            for match in pattern.regex.finditer(text):
                start, end = match.span()
                if end <= start:
                    continue
                if context is not None and not (
                    context.search(key)
                    or context.search(text, max(0, start - CONTEXT_WINDOW_CHARS), start)
                ):
                    needed_context = True
                    continue
                if validator is not None and not validator(match.group()):
                    continue
                matches.append((start, end, pattern, handling))
        return matches, needed_context

    def _mask_str(
        self, text: str, hits: list[_Entry], path: str, out: list[Finding], key: str
    ) -> str:
        """`text` masked (the very object when no match held up)."""
        matches, needed_context = self._matches(text, hits, key)
        if not matches:
            if not needed_context:
                self._remember_clean(text)
            return text
        return _masked_matches(text, matches, path, out)


def _masked_matches(text: str, matches: list[_Match], path: str, out: list[Finding]) -> str:
    """`text` with every cluster of overlapping `matches` replaced (see the module docstring);
    a finding per distinct match in `out`."""
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
        cluster = _distinct(matches[i:j], start, end)
        strictest = max(cluster, key=lambda m: _RANK[m[3]])
        if len(cluster) == 1:
            handling = strictest[3]
        else:
            handling = Handling.FULL if _RANK[strictest[3]] else Handling.NONE
        parts.append(text[pos:start])
        parts.append(_replace(text[start:end], strictest[2], handling))
        pos = end
        out.extend(
            Finding(path, m[2].type, m[2].classification, m[2].level, handling) for m in cluster
        )
        i = j
    parts.append(text[pos:])
    return "".join(parts)


def _child(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _with_unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A dict of `pairs`; a key seen before (two keys masked alike) gets ``~2``, ``~3``..."""
    out: dict[Any, Any] = {}
    for key, item in pairs:
        unique = key
        suffix = 2
        while unique in out:
            unique = f"{key}~{suffix}"
            suffix += 1
        out[unique] = item
    return out


def _distinct(cluster: Sequence[_Match], start: int, end: int) -> list[_Match]:
    """One match per (type, classification) in a cluster spanning [start, end): patterns
    finding the same kind of thing (the seed's card pattern and the built-in one, over the
    same or overlapping spans) are one finding over the cluster's span, the stricter handling
    kept."""
    best: dict[tuple[str, str], _Match] = {}
    for m in cluster:
        kind = (m[2].type, m[2].classification)
        if kind not in best or _RANK[m[3]] > _RANK[best[kind][3]]:
            best[kind] = (start, end, m[2], m[3])
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


@functools.cache
def default_masker() -> Masker:
    """The seed's patterns and handling rules (masking is on even without a policy file)."""
    return Masker(default_classification_policy())
