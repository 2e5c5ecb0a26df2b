"""Finding and reading policy files, and error messages that point into them (DESIGN §5).

Generic on purpose: every kind of policy shares it (the models' field validators are in
`fields`, the shape parsers' shared steps in `parsing`). Every error is a ConfigError
whose lines read ``<file>: <path inside it>: <rule>, not <value>``, all of a file's problems
at once, so one `policy apply` run shows everything that needs fixing. A value is quoted with
at most MAX_PREVIEW_CHARS (200) characters.

A policy file is bounded before anything walks it (DESIGN §10): at most MAX_POLICY_FILE_BYTES,
at most MAX_POLICY_VALUES values (mappings, lists, keys and scalars) once YAML aliases and
merge keys are expanded (counted on YAML's node graph, without expanding it: a billion-item
alias bomb is refused in milliseconds), nested at most MAX_POLICY_DEPTH levels, no recursive
aliases, and every number finite.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypedDict

import yaml
from pydantic import ValidationError

from schemas.limits import MIB
from schemas.policy import PolicyDocument, PolicyKind
from workers.errors import ConfigError
from workers.kernels.checks import cut, preview

EXTENSIONS = (".yaml", ".yml", ".json")
MAX_POLICY_FILE_BYTES: Final = 1 * MIB
"""A policy file's size. The largest seed is ~5 KiB; a policy is published as one Kafka record
(schemas.limits.MAX_RECORD_BYTES), so a file much larger could not be applied anyway."""
MAX_POLICY_VALUES: Final = 100_000
"""Values in one policy file after alias expansion (~100 bytes each once loaded: ~10 MB)."""
MAX_POLICY_DEPTH: Final = 32
"""Nesting of mappings and lists (the seeds nest 6 deep)."""


def find_policy_file(path: Path, stems: Sequence[str]) -> Path:
    """`path` itself if it is a file; in a directory, ``<stem>.yaml|yml|json`` for the first
    stem that has exactly one. Several candidates for one stem are an error rather than a
    silent pick: which one wins would depend on a rule nobody remembers."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    for stem in stems:
        found = sorted(path / (stem + ext) for ext in EXTENSIONS if (path / (stem + ext)).is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ConfigError(f"{path}: several policy files for {stem!r} ({names}); keep one")
        if found:
            return found[0]
    wanted = ", ".join(stem + "." + "|".join(e[1:] for e in EXTENSIONS) for stem in stems)
    raise ConfigError(f"{path}: no policy file found (looked for {wanted})")


def load_policy_document(
    path: Path,
    stems: Sequence[str],
    kind: PolicyKind,
    *,
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], PolicyDocument]:
    """Find, read and wrap a policy file of `kind`: its plain content and its document."""
    file = find_policy_file(path, stems)
    return policy_document_of(file, read_policy_file(file), kind, normalize=normalize)


def policy_document_of(
    file: Path,
    spec: dict[str, Any],
    kind: PolicyKind,
    *,
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], PolicyDocument]:
    """A file's (bounded, already read) content and the document that publishes it."""
    if normalize is not None:
        spec = normalize(spec)
    try:
        document = PolicyDocument.from_spec(kind, file.stem, spec, source=str(file))
    except ValidationError as exc:  # e.g. a string longer than any record field may hold
        first = exc.errors(include_url=False)[0]
        # ("spec", key, type, key, type, ...): JsonValue names the JSON type after each step.
        where = dotted(first["loc"][1::2])
        raise ConfigError(f"{file}: {where or '(top level)'}: {cut(first['msg'])}") from None
    except (TypeError, ValueError) as exc:
        # YAML can hold what JSON cannot (dates, non-string keys); the policy topic is JSON.
        raise ConfigError(f"{file}: not plain JSON data: {cut(str(exc))}") from exc
    return spec, document


@dataclass(frozen=True, eq=False)
class LoadedPolicy:
    """What every loaded policy carries: its name, where it was read from and the document
    that publishes it (whose content hash is the version decisions are stamped with)."""

    name: str
    source: str
    document: PolicyDocument
    notes: tuple[str, ...] = field(default=(), kw_only=True)
    """What the loader accepted but does not evaluate, or reads in a particular way."""

    @property
    def version(self) -> str:
        return self.document.version


class LoadedFields(TypedDict):
    """The fields every loaded policy takes from its document and its parse (`parse_policy`)."""

    name: str
    source: str
    document: PolicyDocument
    notes: tuple[str, ...]


def loaded_fields(document: PolicyDocument, problems: Problems) -> LoadedFields:
    """A policy's `LoadedFields` from its document and its parse's problems, each note once
    (in the order first noted)."""
    return LoadedFields(
        name=document.name,
        source=problems.source,
        document=document,
        notes=tuple(dict.fromkeys(problems.notes)),
    )


def require_kind(document: PolicyDocument, kind: PolicyKind) -> None:
    """A published document handed to the wrong kind's parser is refused, naming both."""
    if document.kind is not kind:
        source = document.source or document.name
        raise ConfigError(
            f"{source}: policy kind must be {kind.value}, not {document.kind.value!r}"
        )


def plain_json(value: Any) -> Any:
    """YAML timestamps (alpha-solver's `last_updated: 2024-01-15T00:00:00Z`) as ISO 8601 text:
    the policy travels as JSON, and the seed must load as published (a `normalize` for
    `load_policy_document`)."""
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    return value


def thawed(value: Any) -> Any:
    """A plain, mutable copy of a spec written with read-only mappings (built-in defaults)."""
    if isinstance(value, Mapping):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thawed(item) for item in value]
    return value


def builtin_policy_document(
    kind: PolicyKind, spec: Mapping[str, Any]
) -> tuple[dict[str, Any], PolicyDocument]:
    """A built-in policy's spec (a plain copy) and the document it is stamped with."""
    plain: dict[str, Any] = thawed(spec)
    return plain, PolicyDocument.from_spec(kind, "default", plain, source="<built-in>")


def has_policy_file(directory: Path, stems: Sequence[str]) -> bool:
    """Whether `directory` holds a file for any of `stems` (a kind is optional in a set)."""
    return any((directory / (stem + ext)).is_file() for stem in stems for ext in EXTENSIONS)


def read_policy_file(path: Path) -> dict[str, Any]:
    """The file's content as plain data: JSON for ``.json``, YAML (safe, bounded) otherwise."""
    documents = _read_documents(path, several=False)
    data = documents[0] if documents else None
    if data is None:
        raise ConfigError(f"{path}: file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping at the top, not {type(data).__name__}")
    return data


def read_policy_documents(path: Path) -> list[Any]:
    """Every non-empty document of a YAML file (``---`` separated), or a JSON file's one;
    bounded like `read_policy_file` (the value cap counts all documents together)."""
    return [d for d in _read_documents(path, several=True) if d is not None]


def _read_documents(path: Path, *, several: bool) -> list[Any]:
    text = _read_text(path)
    if not text.strip():
        raise ConfigError(f"{path}: file is empty")
    if path.suffix == ".json":
        documents = [_load_json(path, text)]
    else:
        documents = _load_yaml(path, text, several=several)
    _check_data(path, documents)
    return documents


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as source:
            raw = source.read(MAX_POLICY_FILE_BYTES + 1)  # not more, whatever stat says
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_POLICY_FILE_BYTES // MIB} MiB, the limit for a policy file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_POLICY_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: invalid JSON: {cut(str(exc))}") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that measures each document's node graph before constructing it
    (construction shares aliased values, but merge keys copy them, and everything that walks
    the result later, orjson's policy hash included, expands them)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.values_so_far = 0

    def construct_document(self, node: yaml.Node) -> Any:
        self.values_so_far += _measure(node, MAX_POLICY_VALUES - self.values_so_far)
        return super().construct_document(node)


class _TooLarge(Exception):
    """A document's node graph over a bound (the message says which)."""

    def __init__(self, message: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(message)
        self.mark = mark


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _measure(root: yaml.Node, budget: int) -> int:
    """Values under `root` with every alias expanded, without expanding anything: each node
    is visited once (memoised; iterative, so depth costs no stack), a node reached again
    while inside it is a recursive alias. Raises _TooLarge past `budget` or MAX_POLICY_DEPTH."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth), values capped
    inside: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = [done[id(child)] for child in _children(node)]
            values = min(1 + sum(v for v, _ in children), budget + 1)
            depth = 1 + max((d for _, d in children), default=0)
            if depth > MAX_POLICY_DEPTH:
                raise _TooLarge(f"nested more than {MAX_POLICY_DEPTH} levels deep", node.start_mark)
            done[key] = (values, depth)
            inside.discard(key)
        elif key in inside:
            raise _TooLarge("an alias refers to a value that contains it", node.start_mark)
        elif key not in done:
            inside.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in done)
    values = done[id(root)][0]
    if values > budget:
        raise _TooLarge(
            f"more than {MAX_POLICY_VALUES:,} values once its aliases are expanded (the limit "
            "for a policy file)"
        )
    return values


def _load_yaml(path: Path, text: str, *, several: bool) -> list[Any]:
    try:
        if several:
            return list(yaml.load_all(text, Loader=_BoundedLoader))  # a SafeLoader
        return [yaml.load(text, Loader=_BoundedLoader)]  # a SafeLoader
    except _TooLarge as exc:
        raise ConfigError(f"{path}: {_at(exc.mark)}{exc}") from None
    except yaml.MarkedYAMLError as exc:
        where = _at(exc.problem_mark or exc.context_mark)
        raise ConfigError(f"{path}: {where}invalid YAML: {cut(str(exc.problem or exc))}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {cut(str(exc))}") from exc
    except RecursionError:  # PyYAML's composer recurses per level of nesting
        raise ConfigError(f"{path}: nested more than {MAX_POLICY_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: invalid YAML: {cut(str(exc))}") from None


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def _check_data(path: Path, documents: list[Any]) -> None:
    """Values, depth and finite numbers of loaded data (YAML's were measured before it was
    built, so this walk is bounded too): the first problem, with its path."""
    values = 0
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(d, ()) for d in reversed(documents)]
    while stack:
        value, where = stack.pop()
        values += 1
        if values > MAX_POLICY_VALUES:
            raise ConfigError(f"{path}: more than {MAX_POLICY_VALUES:,} values (the limit)")
        if len(where) > MAX_POLICY_DEPTH:
            shown = cut(dotted(where))
            raise ConfigError(f"{path}: {shown}: nested more than {MAX_POLICY_DEPTH} levels deep")
        if isinstance(value, float) and not math.isfinite(value):
            shown = cut(dotted(where)) or "(top level)"
            raise ConfigError(f"{path}: {shown}: must be a finite number, not {value}")
        if isinstance(value, dict):
            stack.extend((item, (*where, str(key))) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*where, i)) for i, item in enumerate(value))


def dotted(loc: Iterable[str | int]) -> str:
    """('rules', 1, 'breaker') -> 'rules[1].breaker'. Keys with dots (breaker ids such as
    cb.vendor.default) stay as written: the path is for humans, not for a parser."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class Problems:
    """Collects a file's problems (errors and notes), each with its path inside the file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.notes: list[str] = []

    def error(self, path: str, rule: str, value: object = ...) -> None:
        # Paths hold the file's own keys and rules quote values: both are cut, so one line
        # stays short whatever the file holds.
        shown = "" if value is ... else f", not {preview(value)}"
        self.errors.append(f"{self.source}: {cut(path)}: {cut(rule)}{shown}")

    def note(self, path: str, text: str) -> None:
        self.notes.append(f"{path}: {text}")

    def validation(self, exc: ValidationError, prefix: Sequence[str | int] = ()) -> None:
        """One line per pydantic error, with our wording for the common cases."""
        for err in exc.errors(include_url=False):
            path = dotted((*prefix, *err["loc"]))
            kind = err["type"]
            if kind == "missing":
                self.error(path, "is required")
            elif kind == "extra_forbidden":
                self.error(path, "unknown field", err["input"])
            else:
                self.error(path, str(err["msg"]), err["input"])

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError("\n".join(self.errors))
