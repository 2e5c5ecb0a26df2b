"""``guardstream alerts``: deliver the alerts topic to the people who act on it."""

from __future__ import annotations

import logging.config
import os
from collections.abc import Sequence
from pathlib import Path

import click
from prometheus_client import CollectorRegistry, start_http_server

from schemas.alerts import Alert
from workers.alerting.forwarder import Forwarder, ForwardSettings, Route
from workers.alerting.postable import Links
from workers.alerting.receivers import AlertmanagerReceiver, Receiver, receiver_of
from workers.alerting.routes import Router, load_routes
from workers.cli.context import CliContext, fail, pass_cli, run, stopping_on_signals
from workers.errors import ConfigError
from workers.logs import logging_config
from workers.metrics import ForwarderCollector
from workers.settings import Settings

ALERTMANAGER = "alertmanager"


@click.group()
def alerts() -> None:
    """Alert delivery."""


@alerts.command()
@click.option(
    "--alertmanager",
    "alertmanager_url",
    envvar="GUARDSTREAM_ALERTMANAGER_URL",
    help="Alertmanager base URL, e.g. http://127.0.0.1:9093; it gets every alert and does "
    "its own routing (GUARDSTREAM_ALERTMANAGER_URL).",
)
@click.option(
    "--routes",
    "routes_file",
    envvar="GUARDSTREAM_ALERT_ROUTES",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Webhook, Slack and PagerDuty receivers and the label routes to them "
    "(GUARDSTREAM_ALERT_ROUTES; see configs/alert_routes.yaml).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of the Prometheus /metrics endpoint (0 disables; default 6068).",
)
@pass_cli
def forward(
    cli: CliContext,
    alertmanager_url: str | None,
    routes_file: Path | None,
    metrics_port: int | None,
) -> None:
    """Deliver every alert, at least once: to Alertmanager's v2 API (firing alerts with
    their labels, resolutions with the values at resolution, firing ones again every
    GUARDSTREAM_ALERT_RESEND_INTERVAL_S) and to the receivers a routes file matches by label.
    What a receiver refuses, or cannot take within GUARDSTREAM_ALERT_GIVE_UP_AFTER_S, goes
    to the dead-letter topic. Resumes where its consumer group (<app>-alert-forwarder)
    stands. Runs until SIGINT/SIGTERM."""
    settings = cli.settings
    url = alertmanager_url or settings.alertmanager_url
    if not url and routes_file is None:
        raise click.UsageError("no receiver: pass --alertmanager URL and/or --routes FILE")
    forward_settings = ForwardSettings(
        resend_interval_s=settings.alert_resend_interval_s,
        give_up_after_s=settings.alert_give_up_after_s,
        links=Links(
            runbook=settings.alert_runbook_url,
            dashboard=settings.alert_dashboard_url,
            generator=settings.alert_generator_url,
        ),
    )
    try:
        receivers, route = _receivers(url, routes_file, forward_settings)
    except ConfigError as exc:
        fail(exc)
    logging.config.dictConfig(
        logging_config(settings.effective_log_format, settings.effective_log_level)
    )
    forwarder = Forwarder(
        settings.kafka_client_options(),
        settings.kafka_bootstrap,
        cli.catalog,
        receivers,
        group_id=f"{settings.app_id}-alert-forwarder",
        settings=forward_settings,
        route=route,
    )
    _serve_metrics(forwarder, settings, metrics_port)

    async def forwarding() -> None:
        await forwarder.run(stopping_on_signals())

    run(forwarding())


def _receivers(
    alertmanager_url: str | None, routes_file: Path | None, settings: ForwardSettings
) -> tuple[list[Receiver], Route]:
    """The receivers, and the route: Alertmanager gets everything, the routes file's
    receivers what its routes match."""
    receivers: list[Receiver] = []
    if alertmanager_url:
        receivers.append(AlertmanagerReceiver(alertmanager_url, settings.rendering))
    if routes_file is None:
        everyone = [r.name for r in receivers]
        return receivers, lambda alert: everyone
    spec = load_routes(routes_file)
    if ALERTMANAGER in spec.receivers and alertmanager_url:
        raise ConfigError(
            f"{routes_file}: receiver name {ALERTMANAGER!r} is taken by --alertmanager"
        )
    receivers += [
        receiver_of(name, receiver, settings.rendering, os.environ)
        for name, receiver in spec.receivers.items()
    ]
    router = Router(spec)
    always = [ALERTMANAGER] if alertmanager_url else []

    def route(alert: Alert) -> Sequence[str]:
        return [*always, *router.receivers_for(alert)]

    return receivers, route


def _serve_metrics(forwarder: Forwarder, settings: Settings, metrics_port: int | None) -> None:
    port = settings.forwarder_port if metrics_port is None else metrics_port
    if port:
        registry = CollectorRegistry()
        registry.register(ForwarderCollector(forwarder.counters))
        start_http_server(port, settings.web_host, registry)
