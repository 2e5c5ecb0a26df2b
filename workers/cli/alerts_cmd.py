"""``guardstream alerts``: deliver the alerts topic to the people who act on it."""

from __future__ import annotations

import logging.config

import click
from prometheus_client import CollectorRegistry, start_http_server

from workers.alerting.forwarder import Forwarder, ForwardSettings
from workers.alerting.postable import Links
from workers.alerting.receivers import AlertmanagerReceiver
from workers.cli.context import CliContext, pass_cli, run, stopping_on_signals
from workers.logs import logging_config
from workers.metrics import ForwarderCollector


@click.group()
def alerts() -> None:
    """Alert delivery."""


@alerts.command()
@click.option(
    "--alertmanager",
    "alertmanager_url",
    envvar="GUARDSTREAM_ALERTMANAGER_URL",
    help="Alertmanager base URL, e.g. http://127.0.0.1:9093 (GUARDSTREAM_ALERTMANAGER_URL).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of the Prometheus /metrics endpoint (0 disables; default 6068).",
)
@pass_cli
def forward(cli: CliContext, alertmanager_url: str | None, metrics_port: int | None) -> None:
    """Post every alert to Alertmanager's v2 API, at least once: firing alerts with their
    labels, resolutions with the values at resolution, firing ones again every
    GUARDSTREAM_ALERT_RESEND_INTERVAL_S (60). A batch Alertmanager refuses, or cannot take
    within GUARDSTREAM_ALERT_GIVE_UP_AFTER_S (300), goes to the dead-letter topic. Resumes
    where its consumer group (<app>-alert-forwarder) stands. Runs until SIGINT/SIGTERM."""
    settings = cli.settings
    url = alertmanager_url or settings.alertmanager_url
    if not url:
        raise click.UsageError("no receiver: pass --alertmanager URL")
    logging.config.dictConfig(
        logging_config(settings.effective_log_format, settings.effective_log_level)
    )
    receiver = AlertmanagerReceiver(url)
    forwarder = Forwarder(
        settings.kafka_client_options(),
        settings.kafka_bootstrap,
        cli.catalog,
        receiver,
        group_id=f"{settings.app_id}-alert-forwarder",
        settings=ForwardSettings(
            resend_interval_s=settings.alert_resend_interval_s,
            give_up_after_s=settings.alert_give_up_after_s,
            links=Links(
                runbook=settings.alert_runbook_url,
                dashboard=settings.alert_dashboard_url,
                generator=settings.alert_generator_url,
            ),
        ),
    )
    port = settings.forwarder_port if metrics_port is None else metrics_port
    if port:
        registry = CollectorRegistry()
        registry.register(ForwarderCollector(forwarder.counters, receiver.name))
        start_http_server(port, settings.web_host, registry)

    async def forwarding() -> None:
        await forwarder.run(stopping_on_signals())

    run(forwarding())
