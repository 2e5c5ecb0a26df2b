"""``guardstream worker``: check the topics, then run the Faust worker until signalled."""

from __future__ import annotations

import click
import faust

from topics.admin import TopicAdmin, TopicStatus, problems_of
from topics.catalog import TopicCatalog
from workers.app import catalog_for, create_worker, tune_garbage_collector
from workers.cli.context import CliContext, pass_cli, run
from workers.cli.policy_option import policies_or_exit, policy_option
from workers.errors import TopicMismatchError
from workers.logs import logging_config


@click.command()
@click.option(
    "--web-port",
    type=int,
    default=None,
    help="Port of the health/metrics endpoint (0 disables; default 6066).",
)
@policy_option
@pass_cli
def worker(cli: CliContext, web_port: int | None, policy_dir: str | None) -> None:
    """Run a worker: ingest the input topics, dead-letter bad records, run the circuit
    breakers (breaker-state, alerts, audit), serve /metrics and /health. Creates missing
    topics; refuses to start (exit 3) when an existing topic contradicts the catalog, and
    (exit 2) when a policy is invalid."""
    settings = cli.settings
    if web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    policies = policies_or_exit(cli, policy_dir)
    run(_ensure_topics(cli, catalog_for(settings, policies.audit)))
    guardstream = create_worker(settings, policies)
    tune_garbage_collector()
    faust_worker = faust.Worker(
        guardstream.app,
        loglevel=settings.effective_log_level,
        logging_config=logging_config(settings.effective_log_format, settings.effective_log_level),
        quiet=True,
    )
    faust_worker.execute_from_commandline()


async def _ensure_topics(cli: CliContext, catalog: TopicCatalog) -> list[TopicStatus]:
    async with TopicAdmin(cli.client_options()) as admin:
        statuses = await admin.ensure(catalog.specs())
    problems = problems_of(statuses)
    if problems:
        raise TopicMismatchError(
            [
                "refusing to start: topics contradict the catalog",
                *problems,
                "fix the topics (or the prefix) and start again",
            ]
        )
    return statuses
