"""Gates: cheap tests a string must pass before a detection pattern is searched in it. Pure.

A regex search costs 0.2-3 us per short string even when nothing matches (one alternation of
many patterns is the slowest: it defeats sre's own prefix scans); `c in s` costs tens of
nanoseconds. So each pattern gets a gate, read off its parse tree:

- the shortest string it can match;
- characters one of which every match contains (the SSN's "-", the email's "@", the medical
  record's ":"), and a character every match holds several times (an IPv4 address's "."s);
- words one of which every match contains ("mrn", "patient id", "sk-");
- how many ASCII digits every match has (9 for an SSN, 13 for a card number);
- shapes, one of which every match has: the pattern's fixed stretches written in the letters
  of `SHAPES` (every digit "0", every capital "A", every small letter "a", every space, "."
  and "-" as "-"): an SSN is ``000-00-0000``, a US phone number ``000-0000``, a bare card
  number ``0000000000000``, an IBAN ``AA00`` (letters count only where the case is fixed). The
  string is translated the same way once (one `bytes.translate`), and ``shape in translated``
  costs what ``"@" in text`` costs, so the digit patterns skip timestamps, uuids and hashes
  (``0000-00-00a00:00:00-000a`` holds none of those shapes) without a search.

Only a string that passes a pattern's gate is searched with it (`workers.masking.masker`). A
gate only ever skips strings the pattern cannot match: a construct the analysis does not know
(lookarounds, back-references, negated classes) contributes nothing to it, and the digit,
word and shape tests apply to ASCII text only (``\\d`` matches other digits too).
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

# Characters too frequent in ordinary values to make a useful gate.
_COMMON = frozenset(" .-_/,")

# A shape gate must be at least this long and hold a digit: others are weaker than the
# character and word gates, and cost a check all the same.
_SHAPE_MIN_LEN = 4
_DIGIT_SHAPE = ord("0")


def _shape_of(code: int) -> int:
    if 48 <= code <= 57:
        return _DIGIT_SHAPE
    if 65 <= code <= 90:
        return ord("A")
    if 97 <= code <= 122:
        return ord("a")
    if chr(code).isspace() or code in b".-":  # \\s matches \\x1c-\\x1f too
        return ord("-")
    return code


SHAPES = bytes(_shape_of(code) for code in range(256))
"""`bytes.translate` table from ASCII text to its shape."""


@dataclass(frozen=True, slots=True)
class Need:
    """What every match of a (part of a) pattern contains."""

    length: int = 0
    chars: frozenset[str] | None = None
    """Caseless ASCII characters (not letters), one of which is in every match."""
    words: frozenset[str] | None = None
    """Lower-case ASCII strings, one of which is in every match (case-insensitively)."""
    digits: int = 0
    """ASCII digits in every match of ASCII text."""
    counts: tuple[tuple[str, int], ...] = ()
    """Caseless ASCII characters (not letters), each with how often every match holds it."""
    shapes: frozenset[bytes] | None = None
    """Shapes (see the module docstring), one of which every match of ASCII text has."""

    @property
    def repeat(self) -> tuple[str, int] | None:
        """The character every match holds most often, when that is at least twice."""
        best = max(self.counts, key=lambda pair: (pair[1], pair[0] not in _COMMON), default=None)
        return best if best is not None and best[1] > 1 else None

    @property
    def shape_gate(self) -> frozenset[bytes] | None:
        """`shapes` when they are worth a test (long enough, with a digit)."""
        shapes = self.shapes
        if shapes is None:
            return None
        if all(len(s) >= _SHAPE_MIN_LEN and _DIGIT_SHAPE in s for s in shapes):
            return shapes
        return None


NOTHING = Need()


@functools.lru_cache(maxsize=1024)
def need_of(pattern: str, flags: int) -> Need:
    """What every match of `pattern` (compiled with `flags`) contains; nothing when unsure.
    Cached: every Masker of every policy version reads the same built-in patterns."""
    try:
        parser: Any = importlib.import_module("re._parser")
        tree = parser.parse(pattern, flags)
        need = _sequence(parser, list(tree), bool(flags & re.IGNORECASE))
        length = int(tree.getwidth()[0])
    except Exception:  # a private module that changed: no gate, never a wrong one
        return NOTHING
    return Need(length, need.chars, need.words, need.digits, need.counts, need.shapes)


def _sequence(parser: Any, items: list[Any], caseless: bool) -> Need:
    chars: frozenset[str] | None = None
    words: frozenset[str] | None = None
    shapes: frozenset[bytes] | None = None
    digits = 0
    counts: Counter[str] = Counter()
    run = ""  # consecutive literal characters: a word every match contains
    shape = b""  # the shape of consecutive fixed items
    zero_width = (parser.AT, parser.ASSERT, parser.ASSERT_NOT)

    for op, av in items:
        if op is parser.LITERAL and chr(av).isascii():
            run += chr(av).lower()
        else:
            if len(run) > 1:  # one character is the `chars` gate's business
                words = _better(words, frozenset([run]))
            run = ""
        if op not in zero_width:  # a lookaround or \b consumes nothing: the stretch goes on
            step = _shape_step(parser, op, av, caseless)
            if step is None or step[1] == 0:
                shapes = _closed(shapes, shape)
                shape = b""
            else:
                code, low, fixed = step
                shape += bytes([code]) * low
                if not fixed:  # more may follow: a stretch ends here, the next starts
                    shapes = _closed(shapes, shape)
                    shape = bytes([code]) * low
        need = _item(parser, op, av, caseless)
        digits += need.digits
        counts.update(dict(need.counts))
        if need.chars is not None and (chars is None or _char_cost(need.chars) < _char_cost(chars)):
            chars = need.chars
        if need.words is not None:
            words = _better(words, need.words)
        if need.shapes is not None:
            shapes = _better(shapes, need.shapes)
    if len(run) > 1:
        words = _better(words, frozenset([run]))
    shapes = _closed(shapes, shape)
    return Need(0, chars, words, digits, tuple(sorted(counts.items())), shapes)


def _closed(shapes: frozenset[bytes] | None, shape: bytes) -> frozenset[bytes] | None:
    return _better(shapes, frozenset([shape])) if len(shape) > 1 else shapes


def _shape_step(parser: Any, op: Any, av: Any, caseless: bool) -> tuple[int, int, bool] | None:
    """(shape, fewest repeats, fixed count) of an item that matches one shape letter at a
    time, else None (`caseless`: under IGNORECASE, where a letter has no fixed shape)."""
    if op is parser.LITERAL:
        return None if av >= 128 or (caseless and chr(av).isalpha()) else (SHAPES[av], 1, True)
    if op is parser.IN:
        code = _class_shape(parser, av, caseless)
        return None if code is None else (code, 1, True)
    if op is parser.SUBPATTERN:
        body = list(av[-1])
        inner = _caseless_in(av, caseless)
        if len(body) != 1:
            return None
        inner_op, inner_av = body[0]
        return _shape_step(parser, inner_op, inner_av, inner)
    if op in _repeats(parser):
        low, high, body = av
        body = list(body)
        if len(body) != 1:
            return None
        inner_op, inner_av = body[0]
        step = _shape_step(parser, inner_op, inner_av, caseless)
        if step is None or not step[2]:
            return None
        return step[0], low * step[1], low == high
    return None


def _caseless_in(subpattern: Any, caseless: bool) -> bool:
    """Whether a group ``(?i:...)`` / ``(?-i:...)`` matches without regard to case."""
    _, add_flags, del_flags, _ = subpattern
    if del_flags & re.IGNORECASE:
        return False
    return caseless or bool(add_flags & re.IGNORECASE)


def _class_shape(parser: Any, members: list[Any], caseless: bool) -> int | None:
    """The one shape letter of everything a character class matches in ASCII text."""
    codes: set[int] = set()
    for op, av in members:
        if op is parser.LITERAL and av < 128:
            codes.add(SHAPES[av])
        elif op is parser.RANGE and av[1] < 128:
            codes.update(SHAPES[code] for code in range(av[0], av[1] + 1))
        elif op is parser.CATEGORY and av is parser.CATEGORY_DIGIT:
            codes.add(_DIGIT_SHAPE)
        elif op is parser.CATEGORY and av is parser.CATEGORY_SPACE:
            codes.add(ord("-"))
        else:
            return None
    if caseless and codes & {ord("A"), ord("a")}:
        return None  # [A-Z] under IGNORECASE matches small letters too
    return codes.pop() if len(codes) == 1 else None


_Member = TypeVar("_Member", str, bytes)


def _better(current: frozenset[_Member] | None, new: frozenset[_Member]) -> frozenset[_Member]:
    """The more selective set: longer shortest member, then fewer members."""
    if current is None:
        return new

    def cost(members: frozenset[_Member]) -> tuple[int, int]:
        return -min(map(len, members)), len(members)

    return new if cost(new) < cost(current) else current


def _char_cost(chars: frozenset[str]) -> tuple[int, int]:
    return len(chars), len(chars & _COMMON)


def _repeats(parser: Any) -> tuple[Any, ...]:
    return (parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None))


def _item(parser: Any, op: Any, av: Any, caseless: bool) -> Need:
    if op is parser.LITERAL:
        char = chr(av)
        caseless = char.isascii() and not char.isalpha()
        return Need(
            chars=frozenset(char) if caseless else None,
            digits=1 if "0" <= char <= "9" else 0,
            counts=((char, 1),) if caseless else (),
        )
    if op is parser.IN:
        return Need(chars=_literal_set(parser, av), digits=1 if _all_digits(parser, av) else 0)
    if op is parser.SUBPATTERN:
        return _sequence(parser, list(av[-1]), _caseless_in(av, caseless))
    if op in _repeats(parser):
        low, _, body = av
        if low < 1:
            return NOTHING
        need = _sequence(parser, list(body), caseless)
        return Need(
            chars=need.chars,
            words=need.words,
            digits=need.digits * low,
            counts=tuple((char, count * low) for char, count in need.counts),
            shapes=need.shapes,
        )
    if op is parser.BRANCH:
        alternatives = [_sequence(parser, list(alt), caseless) for alt in av[1]]
        chars = [a.chars for a in alternatives]
        words = [a.words for a in alternatives]
        shapes = [a.shapes for a in alternatives]
        counts = [dict(a.counts) for a in alternatives]
        in_all = set(counts[0]).intersection(*counts[1:])
        return Need(
            chars=None if None in chars else frozenset().union(*chars),  # type: ignore[arg-type]
            words=None if None in words else frozenset().union(*words),  # type: ignore[arg-type]
            digits=min(a.digits for a in alternatives),
            counts=tuple(sorted((char, min(c[char] for c in counts)) for char in in_all)),
            shapes=None if None in shapes else frozenset().union(*shapes),  # type: ignore[arg-type]
        )
    return NOTHING


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


# --- the gate table a Masker scans ---------------------------------------------------------

# What a string must have before a pattern is searched in it (a `Need`, flattened):
# length, one of these characters, this character this many times, one of these words, this
# many ASCII digits, one of these shapes; then the search and the pattern's index.
Gate = tuple[
    int,
    tuple[str, ...] | None,
    str,
    int,
    tuple[str, ...] | None,
    int,
    tuple[bytes, ...] | None,
    Callable[[str], object | None],
    int,
]
# Gates that share a test, made once for all of them: the shortest length any of them needs,
# a character every one needs ('' for none), the fewest digits any of them needs, a shape
# every one needs (b'' for none). Its gates no longer hold a test the bucket makes.
Bucket = tuple[int, str, int, bytes, tuple[Gate, ...]]

# Digits in a row from which a pattern's gates go in a bucket of their own (bare 9-19 digit
# runs: no timestamp, uuid or hash has one, so the whole bucket is skipped at once).
_BARE_RUN = 9


@dataclass(frozen=True, slots=True)
class GateTable:
    """The gates of a policy's patterns, grouped as `Masker._scan` tests them."""

    buckets: tuple[Bucket, ...]
    shortest: int
    """With no pattern nothing is ever searched: every string is shorter than this."""
    number_floor: float
    number_ceiling: float
    """A number strictly between the two has a decimal text too short for every gate it could
    pass (a number's text is digits and "-"), so it is never turned into text."""


def gate_table(patterns: Sequence[re.Pattern[str]]) -> GateTable:
    """The gates of `patterns` (a gate's index is its pattern's index in `patterns`)."""
    gates: list[Gate] = []
    for index, pattern in enumerate(patterns):
        need = need_of(pattern.pattern, pattern.flags)
        chars = None if need.chars is None else tuple(sorted(need.chars))
        words = None if need.words is None else tuple(sorted(need.words))
        repeat = need.repeat or ("", 0)
        shapes = None if need.shape_gate is None else tuple(sorted(need.shape_gate))
        search = pattern.search
        gates.append((need.length, chars, *repeat, words, need.digits, shapes, search, index))
    floor, ceiling = _short_numbers(
        min((max(g[0], g[5]) for g in gates if _number_may_pass(g)), default=sys.maxsize)
    )
    return GateTable(
        _buckets(gates), min((g[0] for g in gates), default=sys.maxsize), floor, ceiling
    )


_NUMBER_CHARS = frozenset("-0123456789")


def _short_numbers(shortest: int) -> tuple[float, float]:
    """The open range of numbers whose decimal text (a "-" counts) is shorter than `shortest`
    characters: (-10**(shortest-2), 10**(shortest-1)), found by comparing, without the text."""
    if shortest == sys.maxsize:  # no pattern can match a number's text
        return -math.inf, math.inf
    if shortest < 2:  # every number's text is long enough
        return 0, 0
    return -(10 ** (shortest - 2)), 10 ** (shortest - 1)


def _number_may_pass(gate: Gate) -> bool:
    """Whether the decimal text of an int could pass `gate`."""
    chars, char, words = gate[1], gate[2], gate[4]
    return (
        (chars is None or not _NUMBER_CHARS.isdisjoint(chars))
        and (not char or char in _NUMBER_CHARS)
        and (words is None or any(_NUMBER_CHARS.issuperset(word) for word in words))
    )


def _buckets(gates: Sequence[Gate]) -> tuple[Bucket, ...]:
    """`gates` grouped by what they need: one character, digits, a shape."""
    groups: dict[tuple[str, bool, bytes], list[Gate]] = {}
    for gate in gates:
        chars, digits, shapes = gate[1], gate[5], gate[6]
        char = chars[0] if chars is not None and len(chars) == 1 else ""
        if shapes is not None and all(not shape.strip(b"0") for shape in shapes):
            key = ("", True, b"0" * _BARE_RUN if min(map(len, shapes)) >= _BARE_RUN else b"")
        elif shapes is not None and len(shapes) == 1:
            key = ("", True, shapes[0])  # the same shape (SSNs with "-" and " "): one test
        else:
            key = (char, digits > 0, b"")
        groups.setdefault(key, []).append(gate)
    buckets = []
    for (char, _, _), group in groups.items():
        digits = min(g[5] for g in group)
        shape = _common_shape([g[6] for g in group]) if digits else b""
        buckets.append(
            (min(g[0] for g in group), char, digits, shape, _without(group, char, shape))
        )
    # Those that need digits last, fewest first: a string with too few digits for one of them
    # has too few for every later one.
    return tuple(sorted(buckets, key=lambda bucket: bucket[2]))


def _without(group: Sequence[Gate], char: str, shape: bytes) -> tuple[Gate, ...]:
    """`group` without the tests its bucket makes for all of them: the one character `char`
    they need, the one shape `shape` they need (each was tested once per string already)."""
    return tuple(
        (
            gate[0],
            None if char and gate[1] == (char,) else gate[1],
            *gate[2:6],
            None if shape and gate[6] == (shape,) else gate[6],
            *gate[7:],
        )
        for gate in group
    )


def _common_shape(gate_shapes: Sequence[tuple[bytes, ...] | None]) -> bytes:
    """The longest shape that each of `gate_shapes` holds, whichever it finds (b'': none)."""
    if any(shapes is None for shapes in gate_shapes):
        return b""
    every = [shape for shapes in gate_shapes if shapes is not None for shape in shapes]
    held = [common for common in every if all(common in shape for shape in every)]
    return max(held, key=len, default=b"")
