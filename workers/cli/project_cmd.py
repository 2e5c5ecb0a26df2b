"""``guardstream project``: keep Redis equal to the state topics, for gateways, until signalled."""

from __future__ import annotations

import logging.config

import click
from prometheus_client import CollectorRegistry, start_http_server
from redis.asyncio import Redis

from workers.cli.context import CliContext, pass_cli, run, stopping_on_signals
from workers.logs import logging_config
from workers.metrics import ProjectorCollector
from workers.projection.layout import RedisLayout
from workers.projection.projector import Projector
from workers.projection.store import ProjectionStore
from workers.settings import Settings

# Redis calls that hang (a SIGSTOPped server, a dead link) fail after this long and are
# retried, instead of stalling the projection silently.
_REDIS_TIMEOUT_S = 5.0


@click.command()
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of the Prometheus /metrics endpoint (0 disables; default 6067).",
)
@pass_cli
def project(cli: CliContext, metrics_port: int | None) -> None:
    """Project the live state into Redis (GUARDSTREAM_REDIS_URL): every breaker, budget and
    SLO state's latest record, one hash per key, a notification per change. Resumes where
    Redis says it stands; rebuilds from the topics when Redis lost the projection; rides out
    Redis outages (the worker never waits on Redis). Runs until SIGINT/SIGTERM."""
    settings = cli.settings
    logging.config.dictConfig(
        logging_config(settings.effective_log_format, settings.effective_log_level)
    )
    run(_project(cli, settings, settings.projector_port if metrics_port is None else metrics_port))


async def _project(cli: CliContext, settings: Settings, metrics_port: int) -> None:
    client = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=_REDIS_TIMEOUT_S,
        socket_connect_timeout=_REDIS_TIMEOUT_S,
    )
    layout = RedisLayout.for_topic_prefix(settings.topic_prefix)
    store = ProjectionStore(client, layout, int(settings.projection_ttl_s * 1000))
    projector = Projector(
        settings.kafka_client_options(), settings.kafka_bootstrap, cli.catalog, store
    )
    if metrics_port:
        registry = CollectorRegistry()
        registry.register(ProjectorCollector(projector.counters))
        start_http_server(metrics_port, settings.web_host, registry)
    stopping = stopping_on_signals()
    try:
        await projector.run(stopping)
    finally:
        await client.aclose()
