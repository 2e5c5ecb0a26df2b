"""``guardstream breakers``: the current state of every circuit breaker, from breaker-state."""

from __future__ import annotations

import click
from pydantic import ValidationError
from rich.table import Table

from schemas.state import BreakerState, CircuitState
from topics.catalog import TopicName
from topics.compacted import latest_values
from workers.cli.context import CliContext, pass_cli, print_json, run

_STATE_STYLE = {
    CircuitState.CLOSED: "green",
    CircuitState.OPEN: "bold red",
    CircuitState.HALF_OPEN: "yellow",
    CircuitState.FORCED_OPEN: "red",
    CircuitState.DISABLED: "dim",
    CircuitState.METRICS_ONLY: "cyan",
}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of BreakerState records.")
@pass_cli
def breakers(cli: CliContext, as_json: bool) -> None:
    """Show every breaker's latest state (the compacted breaker-state topic, read to its end)."""
    states = run(_read(cli))
    if as_json:
        print_json([state.model_dump(mode="json") for state in states])
        return
    if not states:
        cli.err.print("no breaker has changed state yet (every breaker is closed)")
        return
    table = Table("BREAKER", "STATE", "SINCE", "RETRY AT", "ATTEMPT", "FAILURE RATE",
                  "SLOW RATE", "CALLS", "FALLBACK", "POLICY", "REASON")  # fmt: skip
    for state in states:
        table.add_row(
            state.key,
            f"[{_STATE_STYLE[state.state]}]{state.state.value}[/]",
            state.since.strftime("%Y-%m-%d %H:%M:%S"),
            state.retry_at.strftime("%H:%M:%S") if state.retry_at else "",
            str(state.attempt),
            f"{state.failure_rate:.0%}",
            f"{state.slow_call_rate:.0%}",
            str(state.calls_in_window),
            state.fallback_action or "",
            state.policy_id,
            state.reason or "",
        )
    cli.console.print(table)


async def _read(cli: CliContext) -> list[BreakerState]:
    catalog = cli.catalog
    values = await latest_values(
        cli.client_options(),
        cli.settings.kafka_bootstrap,
        catalog.name(TopicName.BREAKER_STATE),
        catalog.spec(TopicName.BREAKER_STATE).partitions,
    )
    states: list[BreakerState] = []
    for key, value in values.items():
        try:
            states.append(BreakerState.model_validate_json(value))
        except ValidationError:
            cli.err.print(f"[yellow]skipping an unreadable record for {key!r}[/]")
    return sorted(states, key=lambda state: state.key)
