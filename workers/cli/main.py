"""Entry point of the ``guardstream`` console script."""

from __future__ import annotations

import sys
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from workers.cli.alerts_cmd import alerts
from workers.cli.audit_cmd import audit
from workers.cli.breakers_cmd import breakers
from workers.cli.budgets_cmd import budgets
from workers.cli.cascade_cmd import cascade
from workers.cli.context import CliContext, fail
from workers.cli.project_cmd import project
from workers.cli.publish_cmd import publish
from workers.cli.replay_cmd import replay
from workers.cli.simulate_cmd import simulate
from workers.cli.slos_cmd import slos
from workers.cli.tail_cmd import tail
from workers.cli.topics_cmd import topics
from workers.cli.worker_cmd import worker
from workers.errors import GuardstreamError
from workers.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--bootstrap", envvar="GUARDSTREAM_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers.")
@click.option("--prefix", envvar="GUARDSTREAM_TOPIC_PREFIX", help="Topic name prefix.")
@click.option(
    "--mode",
    envvar="GUARDSTREAM_MODE",
    type=click.Choice(["development", "staging", "production"]),
    help="Runtime mode; chooses defaults (default: development).",
)
@click.version_option(package_name="guardstream")
@click.pass_context
def cli(ctx: click.Context, bootstrap: str | None, prefix: str | None, mode: str | None) -> None:
    """guardstream: circuit breakers, budgets and SLO burn rates for AI agent fleets.

    Every option can also be set as an environment variable GUARDSTREAM_<NAME>
    (e.g. GUARDSTREAM_KAFKA_BOOTSTRAP, GUARDSTREAM_REDIS_URL); flags win.
    """
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "kafka_bootstrap": bootstrap,
            "topic_prefix": prefix,
            "mode": mode,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise click.UsageError(f"invalid settings: {exc}") from None
    ctx.obj = CliContext(settings=settings, console=Console(), err=Console(stderr=True))


cli.add_command(worker)
cli.add_command(topics)
cli.add_command(publish)
cli.add_command(tail)
cli.add_command(project)
cli.add_command(cascade)
cli.add_command(simulate)
cli.add_command(replay)
cli.add_command(breakers)
cli.add_command(budgets)
cli.add_command(slos)
cli.add_command(audit)
cli.add_command(alerts)


def main() -> None:
    try:
        sys.exit(cli.main(prog_name="guardstream", standalone_mode=True))
    except GuardstreamError as exc:
        # What a command did not turn into its exit code itself (e.g. connection options built
        # before its coroutine runs: a CA file that cannot be loaded) is still one line and
        # its exit code, never a traceback.
        fail(exc)


if __name__ == "__main__":
    main()
