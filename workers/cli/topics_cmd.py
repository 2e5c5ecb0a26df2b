"""``guardstream topics create|describe``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from topics.admin import TopicAdmin, TopicStatus, problems_of
from topics.catalog import TopicCatalog
from workers.app import catalog_for
from workers.cli.context import CliContext, pass_cli, print_json, run
from workers.errors import ConfigError, TopicMismatchError
from workers.policies.policy_set import load_audit_types


@click.group()
def topics() -> None:
    """Create or inspect the topics guardstream uses."""


@topics.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_cli
def create(cli: CliContext, as_json: bool) -> None:
    """Create missing topics and verify existing ones (idempotent).

    Exits 3 when a topic exists with partitions or cleanup policy other than the catalog's.
    """

    catalog = _catalog(cli)

    async def go() -> list[TopicStatus]:
        async with TopicAdmin(cli.client_options()) as admin:
            return await admin.ensure(catalog.specs())

    _report(cli, catalog, run(go()), as_json)


@topics.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_cli
def describe(cli: CliContext, as_json: bool) -> None:
    """Show every catalog topic and how the cluster's copy compares (exit 3 on mismatch)."""

    catalog = _catalog(cli)

    async def go() -> list[TopicStatus]:
        async with TopicAdmin(cli.client_options()) as admin:
            return await admin.verify(catalog.specs())

    _report(cli, catalog, run(go()), as_json)


def _catalog(cli: CliContext) -> TopicCatalog:
    """The catalog with the audit topic's retention from the audit event-type policy of
    GUARDSTREAM_POLICY_DIR (the retention the worker creates it with)."""
    settings = cli.settings
    try:
        audit_types = load_audit_types(
            Path(settings.policy_dir) if settings.policy_dir else None, settings.mode
        )
    except ConfigError as exc:
        cli.err.print(f"[red]invalid policy:[/] {exc}", highlight=False)
        raise SystemExit(ConfigError.exit_code) from None
    return catalog_for(settings, audit_types)


def _report(
    cli: CliContext, catalog: TopicCatalog, statuses: list[TopicStatus], as_json: bool
) -> None:
    if as_json:
        print_json({"topics": [status.as_dict() for status in statuses]})
    else:
        specs = {spec.name: spec for spec in catalog.specs()}
        table = Table("topic", "status", "partitions", "cleanup", "retention.ms", "notes")
        for status in statuses:
            spec = specs[status.name]
            colour = {"ok": "green", "created": "cyan"}.get(str(status.action), "red")
            table.add_row(
                status.name,
                f"[{colour}]{status.action}[/]",
                str(status.partitions if status.partitions is not None else spec.partitions),
                status.config.get("cleanup.policy", str(spec.cleanup)),
                status.config.get("retention.ms", str(spec.retention_ms or "-")),
                "; ".join(status.problems + status.notes),
            )
        cli.console.print(table)
    problems = problems_of(statuses)
    if problems:
        error = TopicMismatchError(problems)
        cli.err.print(f"[bold red]error:[/] {error}", highlight=False)
        raise SystemExit(error.exit_code)
