"""Showing a compacted state topic in the CLI: the latest record of every key, decoded, as
JSON or as the command's table, once or refreshed in place (`--watch`, like `top`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from topics.catalog import TopicName
from topics.compacted import latest_values
from workers.cli.context import CliContext, print_json, run

M = TypeVar("M", bound=BaseModel)

BAR_WIDTH = 20
"""Cells of a meter (`bar`) in a state table."""


async def read_states(cli: CliContext, topic: TopicName, model: type[M]) -> list[M]:
    """Every key's latest `model` record in `topic`; unreadable ones are reported, skipped."""
    catalog = cli.catalog
    values = await latest_values(
        cli.client_options(),
        cli.settings.kafka_bootstrap,
        catalog.name(topic),
        catalog.spec(topic).partitions,
    )
    states: list[M] = []
    for key, value in values.items():
        try:
            states.append(model.model_validate_json(value))
        except ValidationError:
            cli.err.print(f"[yellow]skipping an unreadable record for {key!r}[/]")
    return states


def shown_without_table(
    cli: CliContext, states: Sequence[BaseModel], *, as_json: bool, none_yet: str
) -> bool:
    """Whether `states` were shown without the command's table: as one JSON array (--json),
    or, when there are none, as `none_yet` on stderr."""
    if as_json:
        print_json([state.model_dump(mode="json") for state in states])
        return True
    if not states:
        cli.err.print(none_yet)
        return True
    return False


MIN_WATCH_INTERVAL_S = 0.5


def watch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--watch` and `--interval` for a state command."""
    command = click.option(
        "--interval",
        type=click.FloatRange(min=MIN_WATCH_INTERVAL_S),
        default=2.0,
        show_default=True,
        help="Seconds between two refreshes with --watch.",
    )(command)
    return click.option(
        "--watch", is_flag=True, help="Refresh the table in place until Ctrl-C, like top."
    )(command)


def show_states(
    cli: CliContext,
    read: Callable[[], Coroutine[Any, Any, Sequence[M]]],
    render: Callable[[Sequence[M]], RenderableType],
    *,
    as_json: bool,
    none_yet: str,
    watch: bool = False,
    interval_s: float = 2.0,
) -> None:
    """Show what `read()` returns as `render` draws it: once, as JSON, or (`watch`) redrawn
    every `interval_s` until Ctrl-C."""
    if watch:
        if as_json:
            raise click.UsageError("--watch redraws tables; leave --json out")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
            run(_watch(cli, read, render, none_yet, interval_s))
        return
    states = run(read())
    if shown_without_table(cli, states, as_json=as_json, none_yet=none_yet):
        return
    cli.console.print(render(states))


async def _watch(
    cli: CliContext,
    read: Callable[[], Coroutine[Any, Any, Sequence[M]]],
    render: Callable[[Sequence[M]], RenderableType],
    none_yet: str,
    interval_s: float,
) -> None:
    with Live(console=cli.console, refresh_per_second=4, transient=False) as live:
        while True:
            states = await read()
            header = Text(
                f"{time.strftime('%H:%M:%S')}  every {interval_s:g} s, Ctrl-C stops", style="dim"
            )
            live.update(Group(header, render(states) if states else Text(none_yet)))
            await asyncio.sleep(interval_s)


def bar(fraction: float, style: str, figure: str) -> str:
    """A meter of BAR_WIDTH cells, `fraction` of them full (0 to 1 shown), then `figure`."""
    filled = round(max(0.0, min(fraction, 1.0)) * BAR_WIDTH)
    return f"[{style}]{'█' * filled}[/]{'░' * (BAR_WIDTH - filled)} {figure}"
