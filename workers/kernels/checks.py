"""Validation shared by the kernels' config values: one wording for every bad number.

Messages read "<owner> <field> must be ..., not <value>", which is what policy loaders prefix
with the file and the path inside it.
"""

from __future__ import annotations

import reprlib
from typing import Final

from workers.errors import ConfigError

MAX_PREVIEW_CHARS: Final = 200
"""Of a bad value, at most this many characters go into an error message: a policy value can
be a megabyte of YAML (or an alias bomb), and messages end up in terminals and logs."""

_PREVIEW = reprlib.Repr()
_PREVIEW.maxstring = _PREVIEW.maxother = _PREVIEW.maxlong = MAX_PREVIEW_CHARS
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 10
_PREVIEW.maxlevel = 3


def preview(value: object) -> str:
    """`repr(value)`, cut to MAX_PREVIEW_CHARS (built piecewise: never the whole repr)."""
    try:
        return cut(_PREVIEW.repr(value))
    except ValueError:  # an int too long for str(): Python refuses past 4300 digits
        return f"<an integer of {value.bit_length() if isinstance(value, int) else '?'} bits>"


def cut(text: str) -> str:
    """`text`, or its first MAX_PREVIEW_CHARS characters ending in "..."."""
    return text if len(text) <= MAX_PREVIEW_CHARS else text[: MAX_PREVIEW_CHARS - 3] + "..."


def check_int(
    owner: str, name: str, value: object, minimum: int, maximum: int | None = None
) -> int:
    """`value` as an int in [minimum, maximum], or a ConfigError naming it (bools are not ints
    here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner} {name} must be an integer >= {minimum}, not {preview(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{owner} {name} must be at most {maximum:,}, not {preview(value)}")
    return value


def check_whole_buckets(
    owner: str, window_name: str, window: object, bucket_name: str, bucket: object
) -> int:
    """Both positive integers and the window a whole number of buckets; returns how many."""
    window_value = check_int(owner, window_name, window, 1)
    bucket_value = check_int(owner, bucket_name, bucket, 1)
    if window_value % bucket_value:
        raise ConfigError(
            f"{owner} {window_name} ({window_value}) must be a multiple of "
            f"{bucket_name} ({bucket_value})"
        )
    return window_value // bucket_value
