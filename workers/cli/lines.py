"""Reading JSONL sources for the CLI: numbered non-blank lines, with a byte progress bar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from schemas.clock import parse_event_time


def progress_bar(label: str, console: Console, *, enabled: bool) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


def numbered_lines(source: IO[bytes], bar: Progress, task: object) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) for every non-blank line; advances `bar` by bytes read."""
    for number, line in enumerate(source, start=1):
        bar.advance(task, len(line))  # type: ignore[arg-type]
        if line.strip():
            yield number, line


def size_of(source: IO[bytes]) -> int | None:
    """Bytes in `source` when it is a regular file (None for pipes: no total to show)."""
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError):
        return None


class Moment(click.ParamType):
    """A point in event time on the command line: RFC 3339 with an offset, or Unix epoch
    milliseconds -> epoch ms."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        ms = parse_event_time(value)
        if ms is None:
            self.fail(f"{value!r} is neither RFC 3339 with an offset nor epoch milliseconds")
        return ms


MOMENT = Moment()
