"""What every subcommand gets: the settings (environment + global flags) and output helpers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
import orjson
from rich.console import Console

from topics.catalog import TopicCatalog
from workers.app import catalog_for
from workers.errors import GuardstreamError
from workers.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CliContext:
    settings: Settings
    console: Console
    err: Console

    @property
    def catalog(self) -> TopicCatalog:
        return catalog_for(self.settings)

    def client_options(self) -> dict[str, Any]:
        return self.settings.kafka_client_options()


pass_cli = click.make_pass_decorator(CliContext)


def print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode())


def stopping_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, for a long-running command's loop to end on (call
    it inside the running event loop)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; guardstream errors become their exit code, not a traceback."""
    try:
        return asyncio.run(coroutine)
    except GuardstreamError as exc:
        fail(exc)


def fail(exc: GuardstreamError) -> NoReturn:
    """Print a guardstream error as one line on stderr and exit with its code."""
    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise SystemExit(exc.exit_code) from None
