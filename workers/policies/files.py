"""Finding and reading policy files, and error messages that point into them (DESIGN §5).

Generic on purpose: breakers, budgets and SLO policies share it. Every error is a ConfigError
whose lines read ``<file>: <path inside it>: <rule>, not <value>``, all of a file's problems
at once, so one `policy apply` run shows everything that needs fixing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from schemas.policy import PolicyDocument, PolicyKind
from workers.errors import ConfigError

EXTENSIONS = (".yaml", ".yml", ".json")


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
    spec = read_policy_file(file)
    if normalize is not None:
        spec = normalize(spec)
    try:
        document = PolicyDocument.from_spec(kind, file.stem, spec, source=str(file))
    except (ValidationError, TypeError, ValueError) as exc:
        # YAML can hold what JSON cannot (dates, non-string keys); the policy topic is JSON.
        raise ConfigError(f"{file}: not plain JSON data: {exc}") from exc
    return spec, document


def require_kind(document: PolicyDocument, kind: PolicyKind) -> None:
    """A published document handed to the wrong kind's parser is refused, naming both."""
    if document.kind is not kind:
        source = document.source or document.name
        raise ConfigError(
            f"{source}: policy kind must be {kind.value}, not {document.kind.value!r}"
        )


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
    """The file's content as plain data: JSON for ``.json``, YAML (safe loader) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not text.strip():
        raise ConfigError(f"{path}: file is empty")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    else:
        data = _load_yaml(path, text)
    if data is None:
        raise ConfigError(f"{path}: file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping at the top, not {type(data).__name__}")
    return data


def _load_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: {where}invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc


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
        shown = "" if value is ... else f", not {value!r}"
        self.errors.append(f"{self.source}: {path}: {rule}{shown}")

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


# --- field validators shared by policy models (pydantic PlainValidator functions) ---
# Plain validators see the raw value, so bools are not integers and 5.0 is not 5: a policy
# that says `failure_threshold: true` is a typo, not 1.


def _bad(rule: str) -> PydanticCustomError:
    return PydanticCustomError("guardstream", rule)


def int_at_least(minimum: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _bad(f"must be an integer >= {minimum}")
        return value

    return check


def number_in(low: float, high: float | None, *, low_open: bool = False) -> Any:
    left = "(" if low_open else "["
    rule = f"must be a number in {left}{low}, {high}]" if high is not None else ""
    rule = rule or (f"must be a number > {low}" if low_open else f"must be a number >= {low}")

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(rule)
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            raise _bad(rule)
        return float(value)

    return check


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad("must be a number")
    return float(value)


def positive_decimal(value: Any) -> Decimal:
    rule = "must be a positive amount (number or decimal string)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(rule)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _bad(rule) from None
    if not amount.is_finite() or amount <= 0:
        raise _bad(rule)
    return amount


def strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("must be true or false")
    return value


def string_set(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise _bad("must be a list of strings")
    # YAML reads `[500, 503]` as integers; the error types on events are strings.
    return frozenset(str(v) for v in value)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad("must be a non-empty string")
    return value
