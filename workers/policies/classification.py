"""Classification policy (DESIGN §8, §10): which text is PII/PHI and how it is masked.

`load_classification_policy(path, mode)` reads the alpha-solver seed shape
(`data_classification.yaml`): `classifications` (id -> level, regulations),
`detection_patterns` (regex, classification id, type, confidence) and
`handling_rules.masking` (level -> partial | full | none), and each class's handling of the
calls that carry it (allowed_vendors, can_cache, encryption_required, restrictions,
retention_days: `data_handling`, for the gateway's check). Everything else in the file (colour
codes, transmission rules...) is carried in the published document but not evaluated here.

Decisions:

* Every pattern is compiled case-insensitively. The seed's email pattern is written with
  upper-case classes only (``[A-Z0-9._%+-]+@...``), which taken literally would let every
  address written in lower case through; an address in lower case is still PII. A policy
  cannot ask for a case-sensitive pattern (``(?-i:...)`` inside the pattern still works).
* The seed's patterns and rules are built in (`default_classification_policy`), so masking is
  on without a policy file; they are also a floor under a policy file: a file adds patterns
  and may change handling per level, but the four built-in detections (ssn, email,
  credit_card, medical_record) always apply. A file that repeats one (same pattern text,
  type and classification) does not apply it twice.
* PII and PHI must be masked: ``handling_rules.masking`` may say partial or full for the
  levels ``pii`` and ``phi``, never none (DESIGN §10: nothing unmasked from the patterns
  reaches logs, alerts or audit). Another level may say none: its matches are reported in
  findings and left as written.
* A pattern whose level has no masking rule is masked in full (and the loader says so in
  `notes`): an unlisted level fails closed.
* Built-in detectors (`workers.policies.builtin_detectors`: card numbers in every grouping, SSNs
  without dashes, phone numbers, IBANs, API keys, JWTs, IP addresses, e-mail addresses with
  non-ASCII or spelled-out ``[at]``/``(dot)`` parts) run after the policy's patterns. They
  are on by default; ``builtin_detectors`` (a guardstream field, next to the seed's ones)
  switches each off by name, e.g. ``builtin_detectors: {ip_address: false}``, and the loader
  notes every detector switched off. ``phone_regions`` (ISO 3166 codes, default ``[US]``)
  says whose national formats count as phone numbers; numbers written with ``+`` and a
  country code are recognised for every country. API keys and JWTs are classified
  ``class.credential`` (level ``credential``, masked in full unless a rule says partial;
  never none), the others ``class.pii``.
* A pattern's type chooses its validator, for the policy's patterns as for the built-in
  ones: a match of type ``ssn``, ``credit_card``, ``iban``, ``phone``, ``ip_address`` or
  ``jwt`` counts only when it passes the check of that type (SSA rules, Luhn, mod-97,
  `phonenumbers`, `ipaddress`, a JSON header), so "000-00-0000" and a 16-digit id that fails
  Luhn are not masked. A pattern that must not be validated takes another type name.
* The runtime mode changes nothing: masking is the same in development and production. The
  `mode` parameter keeps the loaders' signatures alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import phonenumbers

from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.data_rules import ClassHandling
from workers.policies.builtin_detectors import (
    BUILTIN_DETECTOR_NAMES,
    CONTEXT,
    DEFAULT_PHONE_REGIONS,
    Validator,
    builtin_detectors,
    validator_for,
)
from workers.policies.data_handling import class_handling
from workers.policies.files import (
    LoadedPolicy,
    Problems,
    builtin_policy_document,
    load_policy_document,
    loaded_fields,
    require_kind,
)
from workers.settings import Mode

# Looked for in a policy directory, in this order.
FILE_STEMS = ("data_classification", "classification")

# Every pattern is matched case-insensitively (see the module docstring).
PATTERN_FLAGS = re.IGNORECASE

# Levels whose matches must be masked whatever a policy file says.
MUST_MASK_LEVELS = frozenset({"pii", "phi", "credential"})

# A pattern type names findings and full-mask labels ("[PHI:medical_record]").
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class Handling(StrEnum):
    """What happens to a matched span: handling_rules.masking values."""

    PARTIAL = "partial"
    """A small, non-identifying hint stays (last 4 digits, first letter and domain...)."""
    FULL = "full"
    """The whole span becomes ``[<LEVEL>:<type>]``."""
    NONE = "none"
    """Left as written (reported in findings); refused for pii and phi."""


@dataclass(frozen=True, slots=True)
class Classification:
    """One entry of `classifications`: the parts masking and auditing use."""

    id: str
    level: str
    regulations: tuple[str, ...] = ()
    """Regulations the seed lists (GDPR, HIPAA...): the jurisdiction of a sensitive record."""


@dataclass(frozen=True, slots=True)
class DetectionPattern:
    """One compiled detection pattern."""

    type: str
    classification: str
    level: str
    confidence: str
    pattern: str
    """As written in the policy (for errors and documents; `regex` is what runs)."""
    regex: re.Pattern[str]
    validator: Validator | None = None
    """Whether a match really is one of its type (Luhn, mod-97...); None: every match is."""
    context: re.Pattern[str] | None = None
    """When set, a match counts only if this finds a word in the key the value is stored
    under or just before the match (bare digit runs: ``ssn=123456789``)."""
    detector: str | None = None
    """The built-in detector it belongs to; None for the policy's own patterns."""


# The seed (configs/seeds/alpha-solver/data_classification.yaml), built in. Only what this
# module evaluates; the seed file itself is what `policy apply` publishes.
BUILTIN_SPEC: Mapping[str, Any] = MappingProxyType(
    {
        # With the seed's handling of each class (workers.policies.data_handling).
        "classifications": {
            "class.public": {
                "id": "class.public",
                "level": "public",
                "restrictions": [],
                "allowed_vendors": "all",
                "encryption_required": False,
                "can_cache": True,
            },
            "class.internal": {
                "id": "class.internal",
                "level": "internal",
                "restrictions": ["no_external_sharing"],
                "allowed_vendors": ["approved_list"],
                "encryption_required": False,
                "can_cache": True,
            },
            "class.confidential": {
                "id": "class.confidential",
                "level": "confidential",
                "restrictions": ["no_external_sharing", "audit_required", "need_to_know"],
                "allowed_vendors": ["enterprise_only"],
                "encryption_required": True,
                "retention_days": 1095,
                "can_cache": False,
            },
            "class.pii": {
                "id": "class.pii",
                "level": "pii",
                "regulations": ["GDPR", "CCPA", "PIPEDA"],
                "restrictions": [
                    "encryption_required",
                    "no_third_party",
                    "right_to_delete",
                    "consent_required",
                ],
                "allowed_vendors": ["privacy_certified"],
                "encryption_required": True,
                "retention_days": 730,
                "can_cache": False,
            },
            "class.phi": {
                "id": "class.phi",
                "level": "phi",
                "regulations": ["HIPAA", "HITECH"],
                "restrictions": [
                    "baa_required",
                    "audit_trail",
                    "encryption_transit_rest",
                    "minimum_necessary",
                ],
                "allowed_vendors": ["hipaa_compliant"],
                "encryption_required": True,
                "retention_days": 2190,
                "can_cache": False,
            },
            # Not in the seed: what the built-in API key and token detectors find. No vendor
            # may receive it.
            "class.credential": {
                "id": "class.credential",
                "level": "credential",
                "allowed_vendors": [],
                "encryption_required": True,
                "can_cache": False,
            },
        },
        "detection_patterns": [
            {
                "pattern": r"\b\d{3}-\d{2}-\d{4}\b",
                "classification": "class.pii",
                "type": "ssn",
                "confidence": "high",
            },
            {
                "pattern": r"\b[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}\b",
                "classification": "class.pii",
                "type": "email",
                "confidence": "high",
            },
            {
                "pattern": r"\b(?:\d{4}[-\s]?){3}\d{4}\b",
                "classification": "class.pii",
                "type": "credit_card",
                "confidence": "medium",
            },
            {
                "pattern": r"\b(MRN|Patient ID):\s*\w+",
                "classification": "class.phi",
                "type": "medical_record",
                "confidence": "high",
            },
        ],
        "handling_rules": {
            "masking": {"pii": "partial", "phi": "full", "confidential": "none"},
        },
    }
)


@dataclass(frozen=True, eq=False)
class ClassificationPolicy(LoadedPolicy):
    """A validated classification policy. `Masker(policy)` applies it."""

    patterns: tuple[DetectionPattern, ...]
    handling: Mapping[str, Handling]
    """Level -> handling, built-in rules overridden by the file's."""
    classifications: Mapping[str, Classification]
    builtin_patterns: tuple[DetectionPattern, ...] = ()
    """The patterns of the built-in detectors the policy leaves on."""
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    switched_off: tuple[str, ...] = ()
    """Built-in detectors the policy switched off."""
    data_handling: Mapping[str, ClassHandling] = field(default_factory=lambda: MappingProxyType({}))
    """Class id -> what a call carrying the class may do (workers.policies.data_handling)."""

    @property
    def detectors(self) -> tuple[DetectionPattern, ...]:
        """Everything the Masker searches: the policy's patterns, then the built-in ones."""
        return self.patterns + self.builtin_patterns

    def handling_for(self, level: str) -> Handling:
        """The masking rule of `level`; a level without one is masked in full."""
        return self.handling.get(level, Handling.FULL)

    @classmethod
    def from_document(
        cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT
    ) -> ClassificationPolicy:
        """The policy a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.CLASSIFICATION)
        return _from_spec(doc.spec, doc)


def load_classification_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> ClassificationPolicy:
    """Read and validate a classification policy file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.CLASSIFICATION)
    return _from_spec(spec, doc)


def default_classification_policy(mode: Mode = Mode.DEVELOPMENT) -> ClassificationPolicy:
    """No policy file: the seed's patterns and rules, so masking is never off."""
    spec, doc = builtin_policy_document(PolicyKind.CLASSIFICATION, BUILTIN_SPEC)
    return _from_spec(spec, doc)


# --- parsing ---


def _from_spec(spec: Mapping[str, Any], doc: PolicyDocument) -> ClassificationPolicy:
    problems = Problems(doc.source or doc.name)
    regions = _phone_regions(spec.get("phone_regions", list(DEFAULT_PHONE_REGIONS)), problems)
    switched_off = _switched_off(spec.get("builtin_detectors", {}), problems)
    builtin = _parse(BUILTIN_SPEC, Problems("<built-in>"), None, regions)
    parsed = _parse(spec, problems, builtin, regions)
    levels = {cid: classification.level for cid, classification in parsed[0].items()}
    data_handling = class_handling(BUILTIN_SPEC, spec, levels, problems)
    problems.raise_if_any()
    classifications, patterns, handling = parsed
    for pattern in patterns:
        if pattern.level not in handling:
            problems.note(
                f"classification {pattern.classification}",
                f"level {pattern.level!r} has no masking rule: pattern {pattern.type!r} "
                "is masked in full",
            )
    for name in switched_off:
        problems.note(f"builtin_detectors.{name}", "switched off: what it finds is not masked")
    return ClassificationPolicy(
        **loaded_fields(doc, problems),
        patterns=patterns,
        handling=MappingProxyType(handling),
        classifications=MappingProxyType(classifications),
        builtin_patterns=_builtin_patterns(regions, classifications, switched_off),
        phone_regions=regions,
        switched_off=switched_off,
        data_handling=MappingProxyType(data_handling),
    )


def _builtin_patterns(
    regions: tuple[str, ...], classes: Mapping[str, Classification], switched_off: Sequence[str]
) -> tuple[DetectionPattern, ...]:
    return tuple(
        DetectionPattern(
            type=builtin.type,
            classification=builtin.classification,
            level=classes[builtin.classification].level,
            confidence=builtin.confidence,
            pattern=builtin.pattern,
            regex=re.compile(builtin.pattern, builtin.flags),
            validator=builtin.validator(regions),
            context=CONTEXT[builtin.type] if builtin.needs_context else None,
            detector=detector.name,
        )
        for detector in builtin_detectors(regions)
        if detector.name not in switched_off
        for builtin in detector.patterns
    )


def _switched_off(raw: Any, problems: Problems) -> tuple[str, ...]:
    """The built-in detectors `builtin_detectors` switches off (name: false)."""
    if not isinstance(raw, dict):
        problems.error("builtin_detectors", "must be a mapping of detector name -> true/false", raw)
        return ()
    known = ", ".join(BUILTIN_DETECTOR_NAMES)
    for name, enabled in raw.items():
        if name not in BUILTIN_DETECTOR_NAMES:
            problems.error(f"builtin_detectors.{name}", f"unknown detector (known: {known})")
        elif not isinstance(enabled, bool):
            problems.error(f"builtin_detectors.{name}", "must be true or false", enabled)
    return tuple(name for name in BUILTIN_DETECTOR_NAMES if raw.get(name, True) is False)


def _phone_regions(raw: Any, problems: Problems) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(region, str) for region in raw):
        problems.error("phone_regions", "must be a list of ISO 3166 region codes", raw)
        return DEFAULT_PHONE_REGIONS
    regions = tuple(dict.fromkeys(region.upper() for region in raw))
    for region in regions:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            problems.error("phone_regions", "must be ISO 3166 region codes (US, GB, DE...)", region)
    return regions


_Parsed = tuple[dict[str, Classification], tuple[DetectionPattern, ...], dict[str, Handling]]


def _parse(
    spec: Mapping[str, Any], problems: Problems, builtin: _Parsed | None, regions: tuple[str, ...]
) -> _Parsed:
    """Classifications, patterns and handling of `spec`, on top of `builtin` (if given)."""
    base_classes, base_patterns, base_handling = builtin or ({}, (), {})
    classes = dict(base_classes)
    classes.update(_classifications(spec.get("classifications", {}), problems, base_classes))
    handling = dict(base_handling)
    handling.update(_handling(spec.get("handling_rules", {}), problems))
    patterns = list(base_patterns)
    seen = {(p.pattern, p.type, p.classification) for p in base_patterns}
    raw = spec.get("detection_patterns", [])
    if not isinstance(raw, list):
        problems.error("detection_patterns", "must be a list", raw)
        raw = []
    for i, entry in enumerate(raw):
        pattern = _pattern(entry, f"detection_patterns[{i}]", classes, problems, regions)
        if pattern is None:
            continue
        key = (pattern.pattern, pattern.type, pattern.classification)
        if key not in seen:
            seen.add(key)
            patterns.append(pattern)
    return classes, tuple(patterns), handling


def _classifications(
    raw: Any, problems: Problems, fixed: Mapping[str, Classification]
) -> dict[str, Classification]:
    if not isinstance(raw, dict):
        problems.error("classifications", "must be a mapping of id -> classification", raw)
        return {}
    out: dict[str, Classification] = {}
    for cid, entry in raw.items():
        path = f"classifications.{cid}"
        if not isinstance(entry, dict):
            problems.error(path, "must be a mapping", entry)
            continue
        if "id" in entry and entry["id"] != cid:
            problems.error(f"{path}.id", f"must equal its key {cid!r}", entry["id"])
        level = entry.get("level")
        if not isinstance(level, str) or not level:
            problems.error(f"{path}.level", "must be a non-empty string", level)
            continue
        builtin = fixed.get(cid)
        if builtin is not None and level != builtin.level:
            # The built-in patterns are classified with these ids; a file cannot make an SSN
            # "public" by renaming the level under them.
            problems.error(
                f"{path}.level", f"must be {builtin.level!r} (built-in patterns use {cid})", level
            )
            continue
        regulations = entry.get("regulations", [])
        if not isinstance(regulations, list) or not all(isinstance(r, str) for r in regulations):
            problems.error(f"{path}.regulations", "must be a list of strings", regulations)
            continue
        out[cid] = Classification(id=cid, level=level, regulations=tuple(regulations))
    return out


def _handling(raw: Any, problems: Problems) -> dict[str, Handling]:
    if not isinstance(raw, dict):
        problems.error("handling_rules", "must be a mapping", raw)
        return {}
    masking = raw.get("masking", {})
    if not isinstance(masking, dict):
        problems.error("handling_rules.masking", "must be a mapping of level -> handling", masking)
        return {}
    allowed = ", ".join(h.value for h in Handling)
    out: dict[str, Handling] = {}
    for level, value in masking.items():
        path = f"handling_rules.masking.{level}"
        try:
            handling = Handling(value)
        except ValueError:
            problems.error(path, f"must be one of {allowed}", value)
            continue
        if handling is Handling.NONE and level in MUST_MASK_LEVELS:
            problems.error(path, "must be partial or full (PII/PHI is always masked)", value)
            continue
        out[str(level)] = handling
    return out


def _pattern(
    entry: Any,
    path: str,
    classes: Mapping[str, Classification],
    problems: Problems,
    regions: tuple[str, ...],
) -> DetectionPattern | None:
    if not isinstance(entry, dict):
        problems.error(path, "must be a mapping", entry)
        return None
    errors = len(problems.errors)
    text = entry.get("pattern")
    regex: re.Pattern[str] | None = None
    if not isinstance(text, str) or not text:
        problems.error(f"{path}.pattern", "must be a non-empty string", text)
    else:
        try:
            regex = re.compile(text, PATTERN_FLAGS)
        except re.error as exc:
            problems.error(f"{path}.pattern", f"invalid regular expression ({exc})", text)
        else:
            if regex.fullmatch("") is not None or regex.search("") is not None:
                problems.error(f"{path}.pattern", "must not match the empty string", text)
    cid = entry.get("classification")
    classification = classes.get(cid) if isinstance(cid, str) else None
    if classification is None:
        known = ", ".join(sorted(classes)) or "none defined"
        problems.error(f"{path}.classification", f"unknown classification (known: {known})", cid)
    kind = entry.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        problems.error(f"{path}.type", "must be a name of letters, digits, '_', '.' or '-'", kind)
    confidence = entry.get("confidence", "medium")
    if not isinstance(confidence, str) or not confidence:
        problems.error(f"{path}.confidence", "must be a non-empty string", confidence)
    for key in entry:
        if key not in {"pattern", "classification", "type", "confidence"}:
            problems.note(f"{path}.{key}", "not evaluated")
    if len(problems.errors) > errors or regex is None or classification is None:
        return None
    return DetectionPattern(
        type=str(kind),
        classification=classification.id,
        level=classification.level,
        confidence=str(confidence),
        pattern=regex.pattern,
        regex=regex,
        validator=validator_for(str(kind), regions),
    )
