"""Showing a compacted state topic in the CLI: the latest record of every key, decoded, as
JSON or as the command's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from topics.catalog import TopicName
from topics.compacted import latest_values
from workers.cli.context import CliContext, print_json

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


def bar(fraction: float, style: str, figure: str) -> str:
    """A meter of BAR_WIDTH cells, `fraction` of them full (0 to 1 shown), then `figure`."""
    filled = round(max(0.0, min(fraction, 1.0)) * BAR_WIDTH)
    return f"[{style}]{'█' * filled}[/]{'░' * (BAR_WIDTH - filled)} {figure}"
