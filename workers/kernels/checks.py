"""Validation shared by the kernels' config values: one wording for every bad number.

Messages read "<owner> <field> must be ..., not <value>", which is what policy loaders prefix
with the file and the path inside it.
"""

from __future__ import annotations

from workers.errors import ConfigError


def check_int(owner: str, name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum`, or a ConfigError naming it (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner} {name} must be an integer >= {minimum}, not {value!r}")
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
