"""``guardstream cascade``: the dependency cascade's single writer, until signalled."""

from __future__ import annotations

import logging.config

import click

from workers.app import catalog_for
from workers.cascade.runner import CascadeFenced, CascadeRunner
from workers.cli.context import CliContext, pass_cli, run, stopping_on_signals
from workers.cli.policy_option import policies_or_exit, policy_option
from workers.logs import logging_config
from workers.masking.masker import Masker
from workers.policies.policy_set import PolicySet

log = logging.getLogger(__name__)


@click.command()
@policy_option
@pass_cli
def cascade(cli: CliContext, policy_dir: str | None) -> None:
    """Decide which tools, vendors and modules are usable from every breaker's state and the
    dependency policy (`dependency_graph.yaml`): each change is a dependency-state record
    and an audit record (chain `dependencies`). Run one per deployment, with the workers'
    policies; a second one fences the first, which exits 1. Runs until SIGINT/SIGTERM."""
    settings = cli.settings
    policies = policies_or_exit(cli, policy_dir)
    logging.config.dictConfig(
        logging_config(settings.effective_log_format, settings.effective_log_level)
    )
    try:
        run(_cascade(cli, policies))
    except CascadeFenced as exc:
        cli.err.print(f"[red]stopped:[/] {exc}", highlight=False)
        raise SystemExit(1) from None


async def _cascade(cli: CliContext, policies: PolicySet) -> None:
    settings = cli.settings
    runner = CascadeRunner(
        settings.kafka_client_options(),
        settings.kafka_bootstrap,
        app_id=settings.app_id,
        catalog=catalog_for(settings, policies.audit),
        policies=policies,
        masker=Masker(policies.classification),
    )
    stopping = stopping_on_signals()
    log.info(
        "cascade: %d dependency node(s), breaker keys by %s",
        len(policies.dependencies.graph),
        policies.breakers.key,
    )
    await runner.run(stopping)
