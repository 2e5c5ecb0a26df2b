"""``guardstream slos``: every SLO's latest state, from the compacted slo-state topic."""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Group
from rich.table import Table

from schemas.state import ObjectiveLevel, ObjectiveState, SlaState, SloState, SloStateRecord
from topics.catalog import TopicName
from workers.cli.context import CliContext, pass_cli
from workers.cli.state_topic import bar, read_states, show_states, watch_options

_LEVEL_STYLE = {
    ObjectiveLevel.OK: "green",
    ObjectiveLevel.WARNING: "yellow",
    ObjectiveLevel.CRITICAL: "bold red",
}


@click.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON array of SloState / ObjectiveState / SlaState records (told apart by `kind`).",
)
@watch_options
@pass_cli
def slos(cli: CliContext, as_json: bool, watch: bool, interval: float) -> None:
    """Show every SLO's error budget remaining and burn rates, the window objectives' levels
    and the SLA contracts' figures for the period so far (the compacted slo-state topic, read
    to its end)."""
    show_states(
        cli,
        lambda: _read(cli),
        _tables,
        as_json=as_json,
        none_yet="no SLO has seen an event yet",
        watch=watch,
        interval_s=interval,
    )


def _tables(states: Sequence[SloState | ObjectiveState | SlaState]) -> Group:
    burn = [s for s in states if isinstance(s, SloState)]
    objectives = [s for s in states if isinstance(s, ObjectiveState)]
    contracts = [s for s in states if isinstance(s, SlaState)]
    tables: list[Table] = []
    if burn:
        tables.append(_burn_table(burn))
    if objectives:
        tables.append(_objective_table(objectives))
    if contracts:
        tables.append(_sla_table(contracts))
    return Group(*tables)


def _burn_table(states: list[SloState]) -> Table:
    table = Table("SLO", "LABELS", "TARGET", "GOOD/TOTAL", "ERROR BUDGET LEFT", "BURN RATES",
                  "ALERTING", "EXHAUSTED IN", title="burn-rate SLOs")  # fmt: skip
    for state in states:
        rates = " ".join(f"{window} {rate:.2f}x" for window, rate in state.burn_rates.items())
        alerting = ", ".join(f"[red]{notify}[/] {tier}" for notify, tier in state.alerting.items())
        table.add_row(
            state.slo_id,
            _labels(state.labels),
            f"{state.target:.3%}",
            f"{state.good:,}/{state.total:,}",
            _bar(state.error_budget_remaining),
            rates,
            alerting or "[green]-[/]",
            _duration(state.time_to_exhaustion_ms),
        )
    return table


def _objective_table(states: list[ObjectiveState]) -> Table:
    table = Table("OBJECTIVE", "LABELS", "METRIC", "WINDOW", "VALUE", "LEVEL", "WARNING AT",
                  "CRITICAL AT", "EVENTS", title="window objectives")  # fmt: skip
    for state in states:
        table.add_row(
            state.slo_id,
            _labels(state.labels),
            state.metric,
            _duration(state.window_ms),
            "-" if state.value is None else f"{state.value:.4g}",
            f"[{_LEVEL_STYLE[state.level]}]{state.level.value}[/]",
            f"{state.warning_at:g}",
            f"{state.critical_at:g}",
            f"{state.events_in_window:,}",
        )
    return table


def _sla_table(states: list[SlaState]) -> Table:
    table = Table("CONTRACT", "TIER", "LABELS", "PERIOD", "CALLS", "AVAILABILITY", "P50", "P99",
                  "CREDIT", title="SLA contracts (period so far)")  # fmt: skip
    for state in states:
        table.add_row(
            state.slo_id,
            state.tier,
            _labels(state.labels),
            f"{state.period_start:%Y-%m-%d} .. {state.period_end:%Y-%m-%d}",
            f"{state.total:,}",
            "-" if state.availability_percent is None else f"{state.availability_percent:.3f} %",
            "-" if state.p50_ms is None else f"{state.p50_ms:,.0f} ms",
            "-" if state.p99_ms is None else f"{state.p99_ms:,.0f} ms",
            f"[red]{state.credit_percent:g} %[/]" if state.credit_percent else "0 %",
        )
    return table


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in labels.items()) or "-"


def _bar(remaining: float) -> str:
    style = "green" if remaining >= 0.5 else "yellow" if remaining > 0 else "red"
    return bar(remaining, style, f"{remaining:7.1%}")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms // 1000
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


async def _read(cli: CliContext) -> list[SloState | ObjectiveState | SlaState]:
    records = await read_states(cli, TopicName.SLO_STATE, SloStateRecord)
    return sorted(
        (record.root for record in records), key=lambda state: (state.kind, state.key or "")
    )
