"""A kernel core's state as bytes and back (issue 12, step 6: restore = snapshot + tail).

A core is plain Python state -- rings of buckets, ledgers, trackers, the key map, the routed
items still held -- that references its policies. The codec is pickle, restricted both ways:

- *Policies are referenced, never copied.* Every object reachable from the `PolicySet` is
  written as its path from the set (`policies.budgets[2].config`), and read back as the object
  at that path in the policies the reader loaded. A snapshot therefore only fits the policies
  it was taken under: its header names their version, and a reader with other policies
  ignores it and rebuilds from the beginning (what a restart under new policies did before).
- *Only guardstream's classes and functions are read back* (modules `workers.*`, `schemas.*`,
  each name defined in its module) and a short list of value types of the standard library
  (`array`, `Decimal`, `datetime`, `OrderedDict`...). No builtins such as `getattr` or `eval`,
  so a record someone else wrote to the snapshot topic cannot run code; it can only fail to
  load, and then the worker rebuilds from the beginning. Still, only the workers should be
  allowed to write the topic (Kafka ACLs), as for the audit topic.

Cores hold no functions of their own making (no closures or bound methods: the counters'
hooks are methods, derived bound methods are rebuilt by `__setstate__`), so what is pickled is
state only. The bytes are zlib-compressed: the rings are mostly zeros.
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections import deque
from collections.abc import Iterator
from enum import Enum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from topics.errors import GuardstreamError

Path = tuple[str | int, ...]
"""Steps from the policy set: an attribute name, or `(index,)` / `[key]` for containers."""

_ALLOWED_STDLIB = frozenset(
    {
        ("array", "_array_reconstructor"),
        ("array", "array"),
        ("builtins", "bytearray"),
        ("builtins", "frozenset"),
        ("builtins", "set"),
        ("collections", "Counter"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("zoneinfo", "ZoneInfo"),
    }
)
_OWN_MODULES = ("workers.", "schemas.")
_ATOMS = (str, bytes, int, float, bool, type(None), type)
_COMPRESSION_LEVEL = 1


class SnapshotError(GuardstreamError):
    """A snapshot that cannot be read back here (another format, other policies, damage)."""


class SnapshotCodec:
    """Cores to bytes and back, against one set of policies (`root`, e.g. a `PolicySet`)."""

    def __init__(self, root: object) -> None:
        self._root = root
        self._paths: dict[int, Path] = {}
        for path, value in _walk(root):
            self._paths.setdefault(id(value), path)

    def dump(self, core: object) -> bytes:
        buffer = io.BytesIO()
        _Pickler(buffer, self._paths).dump(core)
        return zlib.compress(buffer.getvalue(), _COMPRESSION_LEVEL)

    def load(self, data: bytes) -> Any:
        try:
            raw = zlib.decompress(data)
            return _Unpickler(io.BytesIO(raw), self._root).load()
        except SnapshotError:
            raise
        except Exception as exc:  # damaged or foreign: rebuilt from the beginning instead
            raise SnapshotError(f"unreadable snapshot: {exc!r}"[:300]) from exc


def _walk(root: object) -> Iterator[tuple[Path, object]]:
    """Every object reachable from `root` with its path, breadth first (so each gets its
    shortest path, the same for the same policies). Sets are not entered: their order is not
    stable, and a core referencing an object only held in a set pickles a copy of it."""
    seen: set[int] = set()
    queue: deque[tuple[Path, object]] = deque([((), root)])
    while queue:
        path, value = queue.popleft()
        if isinstance(value, _ATOMS) or id(value) in seen:
            continue
        seen.add(id(value))
        yield path, value
        queue.extend(_children(path, value))


def _children(path: Path, value: object) -> Iterator[tuple[Path, object]]:
    if isinstance(value, dict | MappingProxyType):
        for key, item in value.items():
            if isinstance(key, str | int):
                yield (*path, "[]", key), item
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield (*path, "[]", index), item
    elif not isinstance(value, set | frozenset):
        for name in _attribute_names(value):
            yield (*path, name), getattr(value, name)


def _attribute_names(value: object) -> Iterator[str]:
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if not name.startswith("__") and hasattr(value, name):
                yield name
    yield from getattr(value, "__dict__", {})


def _resolve(root: object, path: Path) -> object:
    value = root
    steps = iter(path)
    for step in steps:
        if step == "[]":
            value = value[next(steps)]  # type: ignore[index]
        else:
            assert isinstance(step, str)
            value = getattr(value, step)
    return value


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, paths: dict[int, Path]) -> None:
        super().__init__(file, protocol=5)
        self._policy_paths = paths

    def persistent_id(self, obj: Any) -> Path | None:
        if isinstance(obj, _ATOMS):
            return None
        return self._policy_paths.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        # Python pickles an enum member as getattr(its class, name), a zone through
        # getattr(ZoneInfo, "_unpickle"); by value instead, so that the reader never needs
        # `getattr`.
        if isinstance(obj, Enum):
            return type(obj), (obj.value,)
        if isinstance(obj, ZoneInfo):  # the same, through ZoneInfo's own cache of zones
            return ZoneInfo, (obj.key,)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, root: object) -> None:
        super().__init__(file)
        self._root = root

    def persistent_load(self, pid: Any) -> object:
        if not isinstance(pid, tuple):
            raise SnapshotError(f"not a policy reference: {pid!r}"[:200])
        try:
            return _resolve(self._root, pid)
        except (AttributeError, KeyError, IndexError, TypeError, StopIteration) as exc:
            raise SnapshotError(f"the policies have no {pid!r}"[:200]) from exc

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_STDLIB:
            return super().find_class(module, name)
        if module.startswith(_OWN_MODULES) and "." not in name:
            found = super().find_class(module, name)
            if getattr(found, "__module__", None) == module:
                return found
        raise SnapshotError(f"a snapshot may not name {module}.{name}"[:200])
