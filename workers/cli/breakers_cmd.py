"""``guardstream breakers``: the current state of every circuit breaker, from breaker-state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import click
from rich.table import Table

from schemas.override import BreakerOverride, OverrideAction
from schemas.state import BreakerState, CircuitState
from schemas.types import from_epoch_ms
from topics.catalog import TopicName
from topics.publish import EventPublisher, Published
from workers.cli.context import CliContext, pass_cli, run
from workers.cli.state_topic import read_states, show_states, watch_options

_STATE_STYLE = {
    CircuitState.CLOSED: "green",
    CircuitState.OPEN: "bold red",
    CircuitState.HALF_OPEN: "yellow",
    CircuitState.FORCED_OPEN: "red",
    CircuitState.DISABLED: "dim",
    CircuitState.METRICS_ONLY: "cyan",
}


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of BreakerState records.")
@watch_options
@click.pass_context
def breakers(ctx: click.Context, as_json: bool, watch: bool, interval: float) -> None:
    """Show every breaker's latest state (the compacted breaker-state topic, read to its end);
    `breakers override` moves one by hand."""
    if ctx.invoked_subcommand is None:
        cli = ctx.find_object(CliContext)
        assert cli is not None  # the top-level group always sets it
        show_states(
            cli,
            lambda: _read(cli),
            _table,
            as_json=as_json,
            none_yet="no breaker has changed state yet (every breaker is closed)",
            watch=watch,
            interval_s=interval,
        )


@breakers.command()
@click.argument("vendor")
@click.argument("tool")
@click.argument("action", type=click.Choice([str(action) for action in OverrideAction]))
@click.option("--reason", help="Why (goes into the audit record).")
@click.option("--actor", envvar="USER", help="Who asks (default: $USER).")
@pass_cli
def override(
    cli: CliContext, vendor: str, tool: str, action: str, reason: str | None, actor: str | None
) -> None:
    """Force open, disable, set metrics-only or reset the breaker of VENDOR/TOOL.

    Sent into the breaker's input partition, so it takes effect in order with the calls,
    is audited like any transition and replays the same (the breaker key follows the policy's
    `key:`, e.g. VENDOR alone with `key: vendor`)."""
    command = BreakerOverride(
        ts=from_epoch_ms(time.time_ns() // 1_000_000),
        vendor=vendor,
        tool=tool,
        action=OverrideAction(action),
        event_id=f"override-{uuid.uuid4().hex}",
        actor=actor,
        reason=reason,
    )
    published = run(_send(cli, command))
    cli.err.print(
        f"{action} sent for {vendor}/{tool} ({published.topic}[{published.partition}]"
        f"@{published.offset}); `guardstream breakers` shows the result once a worker applied it"
    )


async def _send(cli: CliContext, command: BreakerOverride) -> Published:
    async with EventPublisher(cli.catalog, cli.client_options()) as publisher:
        return await publisher.publish(command)


def _table(states: Sequence[BreakerState]) -> Table:
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
    return table


async def _read(cli: CliContext) -> list[BreakerState]:
    states = await read_states(cli, TopicName.BREAKER_STATE, BreakerState)
    return sorted(states, key=lambda state: state.key)
