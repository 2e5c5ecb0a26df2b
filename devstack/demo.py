"""``make demo``: the whole stack on this machine, live.

Starts a real Kafka broker and redis-server, creates the topics, runs ``guardstream worker``
and ``guardstream simulate`` (the seeds' chaos injection plus a scripted outage and spend
spike) as subprocesses, and shows the worker's live counts until Ctrl-C, or for
``DEMO_SECONDS`` seconds when that is set (scripted runs).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from devstack.alertmanager import AlertmanagerServer
from devstack.kafka import KafkaCluster
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.redis import RedisServer
from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog
from workers.metrics import (
    CONSUMER_LAG,
    DEDUP_TRACKED_IDS,
    EVENTS_ACCEPTED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    PROJECTION_LAG_RECORDS,
    PROJECTION_LAG_SECONDS,
    PROJECTION_REBUILDS,
    PROJECTION_UPDATES,
)
from workers.metrics_scrape import labels, scrape, total
from workers.projection.layout import RedisLayout, Surface
from workers.simulate.through_gateway import GATEWAY_CHECKS

SIMULATOR_ARGS = [
    "simulate",
    "--rate",
    "300",
    "--duplicates",
    "0.02",
    "--outage",
    "openai:20:30",
    "--spike",
    "research:40:20:20",
    "--gateway",  # every call asks check() first: refused calls are not made
]
_REFRESH_S = 1.0
_BREAKER_ROWS = 10
_BUDGET_ROWS = 8
_SLO_ROWS = 5
_MAX_ALERT_ROWS = 8
POLICY_DIR = Path(__file__).resolve().parents[1] / "configs"
DEMO_DAILY_LIMIT_USD = 1_000_000
"""The seed's global daily budget is $150, hard: the demo's 300 calls/s spend it in seconds,
and with every call asking the gateway first, every call after that would be refused and
nothing else (the openai outage, the breakers) would be seen. The demo raises it."""
RESEARCH_HOURLY_BUDGET = {
    "scope": {"team": "research"},
    "period": "hourly",
    "limit_usd": 150,
    "hard": True,
    "thresholds": [
        {"percent": 50, "action": "throttle"},
        {"percent": 100, "action": "halt"},
    ],
}
"""What the spend spike runs into: the research team's normal spend stays well under half of
it in the demo's first 40 s; twenty times that spend throttles its calls within seconds,
then halts them (every later research call is denied by the gateway)."""


def _demo_policies(directory: Path) -> Path:
    """configs/ copied to `directory`, with the global daily budget raised and the research
    team's hourly budget added for the demo."""
    shutil.copytree(POLICY_DIR, directory)
    budgets_file = directory / "budgets.yaml"
    budgets = yaml.safe_load(budgets_file.read_text())
    daily = budgets["budgets"]["bud.global.daily"]
    daily["limit_usd"] = DEMO_DAILY_LIMIT_USD
    daily["limit_tokens"] = DEMO_DAILY_LIMIT_USD * 1000
    budgets["budgets"]["bud.team.research.hourly"] = RESEARCH_HOURLY_BUDGET
    budgets_file.write_text(yaml.safe_dump(budgets, sort_keys=False))
    return directory


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[ManagedProcess]:
    process = ManagedProcess(
        args[0], [sys.executable, "-m", "workers.cli.main", *args], log, env=env
    )
    process.start()
    try:
        yield process
    finally:
        process.stop(timeout=20)


_STATE_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow"}
_AVAILABILITY_STYLE = {"available": "green", "unavailable": "bold red", "degraded": "yellow"}


def _breaker_table(states: list[dict[str, Any]]) -> Table:
    table = Table(
        "breaker", "state", "failure rate", "calls", "retry at", "reason",
        title="circuit breakers (not closed first)", expand=True,
    )  # fmt: skip
    ordered = sorted(states, key=lambda s: (s["state"] == "closed", s["key"]))
    for state in ordered[:_BREAKER_ROWS]:
        style = _STATE_STYLE.get(state["state"], "")
        table.add_row(
            state["key"],
            f"[{style}]{state['state']}[/]" if style else state["state"],
            f"{state['failure_rate']:.0%}",
            str(state["calls_in_window"]),
            (state.get("retry_at") or "")[11:19],
            state.get("reason") or "",
        )
    return table


def _dependency_table(nodes: list[dict[str, str]]) -> Table:
    table = Table(
        "subject", "node", "availability", "reason",
        title="dependencies (guardstream cascade, from Redis)", expand=True,
    )  # fmt: skip
    order = {"unavailable": 0, "degraded": 1}
    for node in sorted(nodes, key=lambda n: (order.get(n["availability"], 2), n["subject"])):
        style = _AVAILABILITY_STYLE.get(node["availability"], "")
        shown = f"[{style}]{node['availability']}[/]" if style else node["availability"]
        table.add_row(node["subject"], node["node"], shown, node["reason"])
    return table


def _dependencies(redis_server: RedisServer, layout: RedisLayout) -> list[dict[str, str]]:
    """The cascade's nodes as the projector holds them in Redis (what gateways read)."""
    names = ("subject", "node", "availability", "reason")
    try:
        with redis_server.client() as client:
            keys = list(client.scan_iter(layout.state(Surface.DEPENDENCY, "*")))
            rows = [client.hmget(key, names) for key in keys]
    except OSError:
        return []
    return [
        {name: (value or b"").decode() for name, value in zip(names, row, strict=True)}
        for row in rows
    ]


def _budget_table(states: list[dict[str, Any]]) -> Table:
    table = Table(
        "budget", "scope", "spent", "limit", "utilization", "action", "decided by",
        title="budgets (current period)", expand=True,
    )  # fmt: skip
    ordered = sorted(states, key=lambda s: -float(s["utilization"]))
    for state in ordered[:_BUDGET_ROWS]:
        utilization = float(state["utilization"])
        style = {"allow": "green", "throttle": "yellow", "halt": "bold red"}[state["action"]]
        table.add_row(
            state["budget_id"],
            ",".join(f"{k}={v}" for k, v in sorted(state["scope"].items())) or "global",
            f"${float(state['spent_usd']):,.2f}",
            "" if state["limit_usd"] is None else f"${float(state['limit_usd']):,.0f}",
            f"{utilization:6.1%}",
            f"[{style}]{state['action']}[/]",
            state.get("decided_by") or "",
        )
    return table


def _slo_table(states: list[dict[str, Any]]) -> Table:
    table = Table(
        "slo", "labels", "error budget left", "burn rates", "alerting / level",
        title="SLOs (burn rates, objectives)", expand=True,
    )  # fmt: skip
    burn = [s for s in states if s.get("kind") == "burn_rate"]
    objectives = [s for s in states if s.get("kind") == "objective" and s["level"] != "ok"]
    for state in sorted(burn, key=lambda s: s["error_budget_remaining"])[:_SLO_ROWS]:
        left = state["error_budget_remaining"]
        style = "green" if left >= 0.5 else "yellow" if left > 0 else "red"
        alerting = ", ".join(state["alerting"])
        table.add_row(
            state["slo_id"],
            ",".join(f"{k}={v}" for k, v in state["labels"].items()) or "-",
            f"[{style}]{left:7.1%}[/]",
            " ".join(f"{w} {r:.0f}x" for w, r in list(state["burn_rates"].items())[:2]),
            f"[red]{alerting}[/]" if alerting else "[green]-[/]",
        )
    for state in objectives[:_SLO_ROWS]:
        style = "yellow" if state["level"] == "warning" else "bold red"
        value = state["value"]
        table.add_row(
            state["slo_id"],
            ",".join(f"{k}={v}" for k, v in state["labels"].items()) or "-",
            "",
            f"{state['metric']} {'-' if value is None else f'{value:.4g}'}",
            f"[{style}]{state['level']}[/]",
        )
    return table


def _page(web_port: int, path: str) -> list[dict[str, Any]]:
    try:
        url = f"http://127.0.0.1:{web_port}/{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            states: list[dict[str, Any]] = orjson.loads(response.read())
            return states
    except (OSError, ValueError):
        return []


def _alertmanager_alerts(alertmanager: AlertmanagerServer) -> list[dict[str, Any]]:
    try:
        return alertmanager.alerts()
    except OSError:
        return []


def _alert_table(alerts: list[dict[str, Any]]) -> Table:
    """What Alertmanager holds, as the forwarder delivered it (suppressed: inhibited)."""
    table = Table(
        "alert", "severity", "labels", "state", title="alerts (in Alertmanager)", expand=True
    )
    hidden = {"alertname", "severity", "guardstream_fingerprint"}
    for alert in sorted(alerts, key=lambda a: a.get("startsAt", ""))[-_MAX_ALERT_ROWS:]:
        shown = alert["labels"]
        rest = " ".join(f"{k}={v}" for k, v in sorted(shown.items()) if k not in hidden)
        table.add_row(
            shown.get("alertname", ""), shown.get("severity", ""), rest, alert["status"]["state"]
        )
    return table


def _gateway_table(gateway: dict[str, float]) -> Table:
    table = Table("decision", "reason", "calls", title="gateway check()", expand=True)
    for key, value in sorted(gateway.items()):
        if key.startswith(GATEWAY_CHECKS):
            found = labels(key)
            table.add_row(found["decision"], found["reason"], f"{value:,.0f}")
    return table


def _view(
    samples: dict[str, float],
    projection: dict[str, float],
    gateway: dict[str, float],
    breakers: list[dict[str, Any]],
    budgets: list[dict[str, Any]],
    slos: list[dict[str, Any]],
    dependencies: list[dict[str, str]],
    alerts: list[dict[str, Any]],
    rate: float,
    elapsed_s: float,
    logs: Path,
) -> Group:
    ingest = Table("topic", "accepted", "duplicates", title="ingest", expand=True)
    for key, value in sorted(samples.items()):
        if key.startswith(EVENTS_ACCEPTED):
            topic = labels(key)["topic"]
            dup = samples.get(f'{EVENTS_DUPLICATE}_total{{topic="{topic}"}}', 0.0)
            ingest.add_row(topic, f"{value:,.0f}", f"{dup:,.0f}")
    dead = Table("topic", "kind", "dead-lettered", title="dead-letter", expand=True)
    for key, value in sorted(samples.items()):
        if key.startswith(EVENTS_DEAD_LETTERED):
            found = labels(key)
            dead.add_row(found["topic"], found["kind"], f"{value:,.0f}")
    summary = (
        f"running {elapsed_s:5.0f}s   throughput {rate:8,.0f} events/s   "
        f"dedup ids {total(samples, DEDUP_TRACKED_IDS):,.0f}   "
        f"lag {total(samples, CONSUMER_LAG):,.0f}\n"
        f"redis projection: {total(projection, f'{PROJECTION_UPDATES}_total'):,.0f} updates, "
        f"lag {total(projection, PROJECTION_LAG_RECORDS):,.0f} records / "
        f"{total(projection, PROJECTION_LAG_SECONDS):.2f} s, "
        f"rebuilds {total(projection, f'{PROJECTION_REBUILDS}_total'):,.0f}\n"
        f"simulator: chaos (timeout 0.1, api_error 0.05, rate_limit 0.15, corruption 0.01), "
        f"openai outage at 20s for 30s, research spend x20 at 40s for 20s; every call asks "
        f"the gateway first, refused calls are not made\n"
        f"logs: {logs}   Ctrl-C stops everything"
    )
    return Group(
        Panel(summary, title="guardstream demo"),
        _gateway_table(gateway),
        _breaker_table(breakers),
        _dependency_table(dependencies),
        _budget_table(budgets),
        _slo_table(slos),
        _alert_table(alerts),
        ingest,
        dead,
    )


def run_demo(seconds: float | None) -> None:
    console = Console()
    logs = Path(tempfile.mkdtemp(prefix="guardstream-demo-"))
    with ExitStack() as stack:
        console.print("starting Kafka (KRaft) and redis-server ...")
        cluster = stack.enter_context(KafkaCluster(n_brokers=1))
        redis_server = stack.enter_context(RedisServer())
        alertmanager = stack.enter_context(AlertmanagerServer())
        settings_env = dict(
            os.environ,
            GUARDSTREAM_KAFKA_BOOTSTRAP=cluster.bootstrap_servers,
            GUARDSTREAM_REDIS_URL=redis_server.url,
            GUARDSTREAM_DATA_DIR=str(logs / "data"),
        )
        catalog = TopicCatalog(prefix=settings_env.get("GUARDSTREAM_TOPIC_PREFIX", "guardstream."))
        asyncio.run(_create_topics(cluster.bootstrap_servers, catalog))
        web_port = free_port()
        policies = _demo_policies(logs / "policies")
        worker = stack.enter_context(
            _process(
                ["worker", "--policy", str(policies), "--web-port", str(web_port)],
                settings_env,
                logs / "worker.log",
            )
        )
        projector_port = free_port()
        stack.enter_context(
            _process(
                ["project", "--metrics-port", str(projector_port)],
                settings_env,
                logs / "projector.log",
            )
        )
        stack.enter_context(
            _process(["cascade", "--policy", str(policies)], settings_env, logs / "cascade.log")
        )
        forward = ["alerts", "forward", "--alertmanager", alertmanager.url, "--metrics-port", "0"]
        stack.enter_context(_process(forward, settings_env, logs / "forwarder.log"))
        gateway_port = free_port()
        simulator_args = [*SIMULATOR_ARGS, "--metrics-port", str(gateway_port)]
        stack.enter_context(_process(simulator_args, settings_env, logs / "simulator.log"))
        console.print(
            f"Kafka {cluster.bootstrap_servers}, Redis {redis_server.url}, "
            f"metrics http://127.0.0.1:{web_port}/metrics, Alertmanager {alertmanager.url}"
        )
        layout = RedisLayout.for_topic_prefix(catalog.prefix)
        _watch(
            console,
            (web_port, projector_port, gateway_port),
            worker,
            lambda: _dependencies(redis_server, layout),
            alertmanager,
            seconds,
            logs,
        )


def _watch(
    console: Console,
    ports: tuple[int, int, int],
    worker: ManagedProcess,
    dependencies: Callable[[], list[dict[str, str]]],
    alertmanager: AlertmanagerServer,
    seconds: float | None,
    logs: Path,
) -> None:
    web_port, projector_port, gateway_port = ports
    started = time.monotonic()
    last_total, last_time = 0.0, started
    try:
        with Live(console=console, refresh_per_second=2) as live:
            while seconds is None or time.monotonic() - started < seconds:
                if not worker.alive:
                    console.print(f"[red]worker exited ({worker.returncode}); see {logs}")
                    return
                samples = scrape(web_port)
                seen = sum(
                    total(samples, m)
                    for m in (
                        f"{EVENTS_ACCEPTED}_total",
                        f"{EVENTS_DUPLICATE}_total",
                        f"{EVENTS_DEAD_LETTERED}_total",
                    )
                )
                now = time.monotonic()
                rate = (seen - last_total) / max(now - last_time, 1e-6)
                last_total, last_time = seen, now
                breakers, budgets = _page(web_port, "breakers"), _page(web_port, "budgets")
                slos = _page(web_port, "slos")
                projection = scrape(projector_port)
                gateway = scrape(gateway_port)
                live.update(
                    _view(
                        samples,
                        projection,
                        gateway,
                        breakers,
                        budgets,
                        slos,
                        dependencies(),
                        _alertmanager_alerts(alertmanager),
                        rate,
                        now - started,
                        logs,
                    )
                )
                time.sleep(_REFRESH_S)
    except KeyboardInterrupt:
        pass
    console.print(
        "stopping worker, projector, cascade, forwarder, simulator, Alertmanager, Kafka and "
        "Redis ..."
    )


async def _create_topics(bootstrap: str, catalog: TopicCatalog) -> None:
    async with TopicAdmin({"bootstrap_servers": bootstrap}) as admin:
        await admin.ensure(catalog.specs())


def main() -> None:
    seconds = os.environ.get("DEMO_SECONDS")
    run_demo(float(seconds) if seconds else None)


if __name__ == "__main__":
    main()
