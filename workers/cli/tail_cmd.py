"""``guardstream tail TOPIC``: follow a topic, pretty by default, JSON lines with --json."""

from __future__ import annotations

import asyncio

import click
import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from topics.catalog import TopicName
from topics.connect import start_client
from workers.cli.context import CliContext, pass_cli, run

_TOPIC_CHOICES = [str(topic) for topic in TopicName]


@click.command()
@click.argument("topic", type=click.Choice(_TOPIC_CHOICES))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (for scripts).")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained record.")
@click.option("--max", "max_records", type=int, default=None, help="Stop after N records.")
@click.option(
    "--idle-timeout", type=float, default=None, help="Stop after N seconds without a record."
)
@pass_cli
def tail(
    cli: CliContext,
    topic: str,
    as_json: bool,
    from_beginning: bool,
    max_records: int | None,
    idle_timeout: float | None,
) -> None:
    """Print records of TOPIC (a logical name, e.g. dead-letter) as they arrive."""
    name = cli.catalog.name(TopicName(topic))
    run(_tail(cli, name, as_json, from_beginning, max_records, idle_timeout))


async def _tail(
    cli: CliContext,
    name: str,
    as_json: bool,
    from_beginning: bool,
    max_records: int | None,
    idle_timeout: float | None,
) -> None:
    consumer = AIOKafkaConsumer(
        name,
        **cli.client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
    )
    await start_client(consumer, cli.settings.kafka_bootstrap, consumer.stop)
    seen = 0
    try:
        while max_records is None or seen < max_records:
            try:
                record = await asyncio.wait_for(consumer.getone(), timeout=idle_timeout)
            except TimeoutError:
                return
            seen += 1
            _print_record(cli.console, record, as_json)
    finally:
        await consumer.stop()


def _print_record(console: Console, record: object, as_json: bool) -> None:
    key = getattr(record, "key", None)
    value = getattr(record, "value", None) or b""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        document = {"undecodable": value[:200].decode("utf-8", "replace")}
    if as_json:
        click.echo(orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode())
        return
    where = f"{getattr(record, 'partition', '?')}@{getattr(record, 'offset', '?')}"
    console.print(f"[dim]{where}[/] [bold]{(key or b'').decode('utf-8', 'replace')}[/]")
    console.print_json(data=document)
