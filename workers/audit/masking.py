"""Masking PII/PHI in JSON-like values and text (DESIGN §8, §10). Pure.

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

Speed: the patterns are also joined into one alternation, searched once per string; only a
string with a hit pays for the per-pattern scan. A value with nothing to mask is returned as
is (the same object), containers included, so the common case copies nothing.
"""

from __future__ import annotations

import re
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

# A pattern whose meaning would change inside a joined alternation (its group numbers shift):
# numbered or named back-references and conditionals. Such a policy is scanned pattern by
# pattern instead. Conservative on purpose: a false alarm only costs speed.
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")

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


class Masker:
    """Applies a ClassificationPolicy. Immutable after construction; share one per policy."""

    __slots__ = ("_has_match", "_patterns", "policy")

    def __init__(self, policy: ClassificationPolicy) -> None:
        self.policy = policy
        self._patterns: tuple[tuple[DetectionPattern, Handling], ...] = tuple(
            (p, policy.handling_for(p.level)) for p in policy.patterns
        )
        self._has_match = _prefilter(policy.patterns)

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
        if self._has_match(text) is None:
            return text, ()
        findings: list[Finding] = []
        return self._mask_str(text, path, findings), tuple(findings)

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
        seed's rules), `jurisdiction` (given, or
        the regulations of every classification found, sorted), `user` (masked: it is one of
        the seed's pii_fields); then every classification found and the findings themselves
        (paths, types, levels; never values). There is no `data_sample`, by design.
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
        if isinstance(value, str):
            if self._has_match(value) is None:
                return value
            return self._mask_str(value, path, out)
        if isinstance(value, Mapping):
            return self._walk_mapping(value, path, out)
        if isinstance(value, list | tuple):
            return self._walk_sequence(value, path, out)
        return value

    def _walk_mapping(self, value: Mapping[Any, Any], path: str, out: list[Finding]) -> Any:
        has_match = self._has_match
        copy: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, str):
                if has_match(item) is None:
                    continue
                new = self._mask_str(item, f"{path}.{key}" if path else str(key), out)
            elif isinstance(item, Mapping | list | tuple):
                new = self._walk(item, f"{path}.{key}" if path else str(key), out)
            else:
                continue
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
            if isinstance(item, str | Mapping | list | tuple):
                new = self._walk(item, f"{path}[{index}]", out)
                if new is not item:
                    if copy is None:
                        copy = list(value)
                    copy[index] = new
        if copy is None:
            return value
        return tuple(copy) if isinstance(value, tuple) else copy

    # --- one string ---

    def _mask_str(self, text: str, path: str, out: list[Finding]) -> str:
        matches: list[_Match] = [
            (m.start(), m.end(), pattern, handling)
            for pattern, handling in self._patterns
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


def _prefilter(patterns: Sequence[DetectionPattern]) -> Callable[[str], object | None]:
    """`search(text)`: not None when some pattern may match `text`. One joined alternation
    when the patterns allow it (a match of any alternative is a match of the whole), else a
    scan pattern by pattern."""
    if not patterns:
        return _no_match
    if not any(_GROUP_REFERENCE.search(p.pattern) for p in patterns):
        try:
            return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), PATTERN_FLAGS).search
        except re.error:  # e.g. a group name used by two patterns
            pass
    regexes = tuple(p.regex for p in patterns)

    def search(text: str) -> object | None:
        for regex in regexes:
            found = regex.search(text)
            if found is not None:
                return found
        return None

    return search


def _no_match(text: str) -> None:
    return None
