"""``guardstream publish``: validate JSONL events and publish them to the input topics."""

from __future__ import annotations

from typing import IO

import click

from schemas.stream import StreamEvent
from topics.catalog import INPUT_TOPICS, TopicName
from topics.publish import EventPublisher, parse_event
from workers.cli.context import CliContext, pass_cli, print_json, run
from workers.cli.lines import numbered_lines, progress_bar, size_of
from workers.errors import InvalidEventError

# Events sent before waiting for their acks; pipelining is what makes large files fast.
_CHUNK = 5000
_TOPIC_CHOICES = [str(topic) for topic in INPUT_TOPICS]


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--topic",
    type=click.Choice(_TOPIC_CHOICES),
    help="Input topic for every line (default: each line's 'type' field, else its fields).",
)
@click.option("--skip-invalid", is_flag=True, help="Report invalid lines and go on (exit 4).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@pass_cli
def publish(
    cli: CliContext,
    source: IO[bytes],
    topic: str | None,
    skip_invalid: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Publish events from SOURCE (a JSONL file, or - for stdin), validating each line first.

    Stops at the first invalid line unless --skip-invalid; exits 4 if any line was invalid.
    """
    show_progress = cli.err.is_terminal if progress is None else progress
    summary = run(
        _publish(cli, source, TopicName(topic) if topic else None, skip_invalid, show_progress)
    )
    if as_json:
        print_json(summary)
    else:
        cli.err.print(
            f"published {summary['published']} event(s), {summary['invalid']} invalid line(s)"
        )
    if summary["invalid"]:
        raise SystemExit(InvalidEventError.exit_code)


async def _publish(
    cli: CliContext,
    source: IO[bytes],
    topic: TopicName | None,
    skip_invalid: bool,
    show_progress: bool,
) -> dict[str, object]:
    counts: dict[str, int] = {}
    invalid = 0
    total = size_of(source)
    with progress_bar("publishing", cli.err, enabled=show_progress) as bar:
        task = bar.add_task("publish", total=total)
        async with EventPublisher(cli.catalog, cli.client_options()) as publisher:
            chunk: list[StreamEvent] = []

            async def flush() -> None:
                async for published in publisher.publish_many(chunk):
                    counts[published.topic] = counts.get(published.topic, 0) + 1
                chunk.clear()

            for number, line in numbered_lines(source, bar, task):
                try:
                    event = parse_event(line, topic)
                except InvalidEventError as exc:
                    invalid += 1
                    cli.err.print(f"[red]line {number}:[/] {exc}", highlight=False)
                    if not skip_invalid:
                        break
                    continue
                chunk.append(event)
                if len(chunk) >= _CHUNK:
                    await flush()
            await flush()
    return {"published": sum(counts.values()), "by_topic": counts, "invalid": invalid}
