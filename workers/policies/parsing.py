"""Steps every policy-shape parser shares (breakers, budgets and SLOs, in any of their shapes).

A kind's `parse` detects which shape a file has and hands it to that shape's parser
(`parse_by_shape`); most parsers first validate the file's top level against their shape's
model (`validated_as`). Entries are validated one at a time (`validated_entries`), so a typo
in one entry does not hide an error in another: one run reports everything. Kernel values
are built with `build`, which points the kernel's own cross-field errors at the file; what a
seed states but guardstream does not evaluate becomes a note (`note_unknown_keys`). Every
problem goes into the file's `Problems`; `parse_policy` raises them together.

Layering, lowest first: the kernel's defaults, the mode's defaults (`base`: the kind's
MODE_DEFAULTS), then the file (guardstream's `defaults:` section, then the entry itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.policy import PolicyDocument
from workers.errors import ConfigError
from workers.policies.fields import extra_keys
from workers.policies.files import LoadedFields, Problems

NOT_EVALUATED = "not evaluated by guardstream; ignored"

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C")
T = TypeVar("T")
S = TypeVar("S", bound=Enum)

SpecParser = Callable[[Mapping[str, Any], Mapping[str, Any], Problems], T | None]
"""(spec, the mode's defaults, problems) -> what the spec configures; None (or anything)
once a problem is recorded."""


def parse_policy(
    doc: PolicyDocument, spec: Mapping[str, Any], base: Mapping[str, Any], parse: SpecParser[T]
) -> tuple[T, LoadedFields]:
    """What `spec` (the content of `doc`) configures on top of the mode's defaults `base`,
    and the policy's name, source, document and notes; ConfigError naming the document and
    every problem found."""
    problems = Problems(doc.source or doc.name)
    parsed = parse(spec, base, problems)
    problems.raise_if_any()
    assert parsed is not None  # a parser returns None only after recording an error
    loaded = LoadedFields(
        name=doc.name, source=problems.source, document=doc, notes=tuple(problems.notes)
    )
    return parsed, loaded


def parse_by_shape(
    spec: Mapping[str, Any],
    base: Mapping[str, Any],
    problems: Problems,
    shape: S | str,
    parsers: Mapping[S, SpecParser[T]],
) -> T | None:
    """`spec` read by the parser of its `shape` (a kind's `detect(spec)`: a shape, or why
    the spec has none); None once a problem is recorded."""
    if not isinstance(shape, Enum):
        problems.error("(top level)", shape)
        return None
    parsed = parsers[shape](spec, base, problems)
    return None if problems.errors else parsed


def validated_as(
    model: type[M], parse: Callable[[M, Mapping[str, Any], Problems], T]
) -> SpecParser[T]:
    """A shape's parser that validates the spec's top level as `model` before `parse` reads
    it (nothing more is read from a spec whose top level is wrong)."""

    def parse_spec(
        spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems
    ) -> T | None:
        validated = validate_entry(model, spec, problems)
        return None if validated is None else parse(validated, base, problems)

    return parse_spec


def validate_entry(cls: type[M], spec: Any, problems: Problems, *prefix: str | int) -> M | None:
    """`spec` as a `cls`, or None with its problems recorded under the path `prefix`."""
    try:
        return cls.model_validate(spec)
    except ValidationError as exc:
        problems.validation(exc, prefix)
        return None


def validated_entries(
    cls: type[M], section: str, entries: Mapping[str, Any], problems: Problems
) -> Iterator[tuple[str, str, M]]:
    """(id, path, entry) of each entry of the mapping `section` that validates as a `cls`;
    the problems of the others are recorded, each under its own path."""
    for entry_id, raw in entries.items():
        entry = validate_entry(cls, raw, problems, section, entry_id)
        if entry is not None:
            yield entry_id, f"{section}.{entry_id}", entry


def build(cls: type[C], problems: Problems, path: str, **fields: Any) -> C | None:
    """`cls(**fields)`, a kernel value; None with its error recorded at `path`."""
    try:
        return cls(**fields)
    except ConfigError as exc:  # cross-field rules live in the kernel; point them at the file
        problems.error(path, str(exc))
        return None


def note_unknown_keys(
    problems: Problems,
    model: BaseModel,
    path: str = "",
    *,
    why: Mapping[str, str] | None = None,
    otherwise: str = NOT_EVALUATED,
    skip: tuple[str, ...] = (),
) -> None:
    """A note per key a seed model kept without knowing it (but those in `skip`): why it is
    not used, `why[key]` or else `otherwise`."""
    reasons = why or {}
    for key in extra_keys(model):
        if key not in skip:
            problems.note(f"{path}.{key}" if path else key, reasons.get(key, otherwise))
