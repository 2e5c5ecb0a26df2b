"""Reading a compacted state topic for the CLI: the latest record of every key, decoded."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from topics.catalog import TopicName
from topics.compacted import latest_values
from workers.cli.context import CliContext

M = TypeVar("M", bound=BaseModel)


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
