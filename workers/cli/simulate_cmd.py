"""``guardstream simulate``: synthetic fleet traffic with the seeds' chaos injection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import click
from prometheus_client import CollectorRegistry, start_http_server

from topics.publish import EventPublisher
from workers.cli.context import CliContext, pass_cli, print_json, run
from workers.errors import ConfigError
from workers.gateway import AsyncGatewayClient, GatewaySettings
from workers.simulate.scenario import Chaos, Outage, Scenario, SpendSpike
from workers.simulate.through_gateway import GatewayCounts, admitted
from workers.simulate.traffic import TrafficGenerator

_TICK_S = 0.05


@click.command()
@click.option(
    "--rate",
    type=float,
    default=200.0,
    show_default=True,
    help="Events per second; 0 sends as fast as possible.",
)
@click.option("--duration", type=float, default=None, help="Stop after N seconds.")
@click.option("--count", type=int, default=None, help="Stop after N events.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option(
    "--chaos/--no-chaos",
    default=True,
    show_default=True,
    help="Inject the seeds' sim.chaos failures (timeout 0.1, api_error 0.05, "
    "rate_limit 0.15, data_corruption 0.01).",
)
@click.option(
    "--outage",
    "outages",
    multiple=True,
    metavar="VENDOR:START_S:DURATION_S",
    help="Scripted vendor outage (repeatable).",
)
@click.option(
    "--spike",
    "spikes",
    multiple=True,
    metavar="TEAM:START_S:DURATION_S:FACTOR",
    help="Scripted spend spike (repeatable).",
)
@click.option(
    "--duplicates",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of calls re-sent with the same event_id.",
)
@click.option(
    "--gateway",
    is_flag=True,
    help="Ask the gateway's check() (GUARDSTREAM_REDIS_URL) before each call; calls it does "
    "not allow are not made (needs `guardstream project`).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=0,
    help="With --gateway: serve its answers per decision and reason on /metrics (0: no).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end.")
@pass_cli
def simulate(
    cli: CliContext,
    rate: float,
    duration: float | None,
    count: int | None,
    seed: int,
    chaos: bool,
    outages: tuple[str, ...],
    spikes: tuple[str, ...],
    duplicates: float,
    gateway: bool,
    metrics_port: int,
    as_json: bool,
) -> None:
    """Publish synthetic tool-invocation, cost and latency traffic until stopped."""
    try:
        scenario = Scenario(
            chaos=Chaos() if chaos else Chaos.none(),
            outages=tuple(Outage.parse(text) for text in outages),
            spikes=tuple(SpendSpike.parse(text) for text in spikes),
            duplicate_share=duplicates,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        outcomes = run(_simulate(cli, scenario, seed, rate, duration, count, gateway, metrics_port))
    except KeyboardInterrupt:
        return
    # Outcomes "<decision>:<reason>" are calls the gateway refused: never made, never sent.
    published = sum(n for outcome, n in outcomes.items() if ":" not in outcome)
    if as_json:
        print_json({"sent": published, "outcomes": dict(outcomes)})
    else:
        cli.err.print(f"sent {published} record(s): {dict(outcomes)}")


async def _simulate(
    cli: CliContext,
    scenario: Scenario,
    seed: int,
    rate: float,
    duration: float | None,
    count: int | None,
    through_gateway: bool,
    metrics_port: int,
) -> Counter[str]:
    generator = TrafficGenerator(scenario, seed=seed)
    outcomes: Counter[str] = Counter()
    counts = GatewayCounts()
    if through_gateway and metrics_port:
        registry = CollectorRegistry()
        registry.register(counts)
        start_http_server(metrics_port, cli.settings.web_host, registry)
    started = time.monotonic()
    sent = 0
    async with (
        EventPublisher(cli.catalog, cli.client_options()) as publisher,
        _gateway(cli, through_gateway) as gateway,
    ):
        while count is None or sent < count:
            elapsed = time.monotonic() - started
            if duration is not None and elapsed >= duration:
                break
            due = int(elapsed * rate) + 1 if rate > 0 else sent + 1000
            if count is not None:
                due = min(due, count)
            now_ms = time.time_ns() // 1_000_000
            while sent < due:
                record = generator.next_record(elapsed_s=elapsed, now_ms=now_ms)
                sent += 1
                answer = "allow" if gateway is None else await admitted(gateway, record, counts)
                if answer != "allow":
                    outcomes[answer] += 1  # the call was not made: nothing to publish
                    continue
                await publisher.send_raw(record.topic, record.key, record.value)
                outcomes[record.outcome] += 1
            if rate > 0:
                await asyncio.sleep(_TICK_S)
        await publisher.flush()
    return outcomes


@contextlib.asynccontextmanager
async def _gateway(cli: CliContext, wanted: bool) -> AsyncIterator[AsyncGatewayClient | None]:
    if not wanted:
        yield None
        return
    settings = GatewaySettings(topic_prefix=cli.settings.topic_prefix)
    async with AsyncGatewayClient(cli.settings.redis_url.get_secret_value(), settings) as client:
        yield client
