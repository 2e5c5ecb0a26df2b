"""``guardstream budgets``: every budget's latest state, from the compacted budget-state topic."""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.table import Table

from schemas.state import BudgetAction, BudgetState
from topics.catalog import TopicName
from workers.cli.context import CliContext, pass_cli
from workers.cli.state_topic import bar, read_states, show_states, watch_options

_ACTION_STYLE = {
    BudgetAction.ALLOW: "green",
    BudgetAction.THROTTLE: "yellow",
    BudgetAction.HALT: "bold red",
}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of BudgetState records.")
@watch_options
@pass_cli
def budgets(cli: CliContext, as_json: bool, watch: bool, interval: float) -> None:
    """Show every budget key's current period: spend, limit, utilization and the action
    gateways must take (the compacted budget-state topic, read to its end)."""
    show_states(
        cli,
        lambda: _read(cli),
        _table,
        as_json=as_json,
        none_yet="no budget has seen spend yet",
        watch=watch,
        interval_s=interval,
    )


def _table(states: Sequence[BudgetState]) -> Table:
    table = Table("BUDGET", "PERIOD", "SPENT", "LIMIT", "UTILIZATION", "ACTION", "DECIDED BY",
                  "PROJECTED", "THRESHOLDS")  # fmt: skip
    for state in states:
        limit = "" if state.limit_usd is None else f"${state.limit_usd:,}"
        action = f"[{_ACTION_STYLE[state.action]}]{state.action.value}[/]"
        table.add_row(
            state.budget_id,
            f"{state.period.value} {state.period_start:%Y-%m-%d %H:%M}",
            f"${state.spent_usd:,.2f}",
            limit,
            _bar(state.utilization),
            action,
            state.decided_by or "",
            f"${state.projected_spend_usd:,.2f}",
            ",".join(str(t) for t in state.thresholds_crossed),
        )
    return table


def _bar(utilization: float) -> str:
    style = "red" if utilization >= 1 else "yellow" if utilization >= 0.8 else "green"
    return bar(utilization, style, f"{utilization:6.1%}")


async def _read(cli: CliContext) -> list[BudgetState]:
    states = await read_states(cli, TopicName.BUDGET_STATE, BudgetState)
    return sorted(states, key=lambda state: (state.budget_id, state.period_start))
