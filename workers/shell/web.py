"""A worker's web pages: Prometheus metrics, health, each kernel's states and the status
page (shell)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from schemas.state import SloState
from workers.ingest.stage import IngestCounters
from workers.metrics import render
from workers.settings import Settings
from workers.shell.spec import KernelSpec
from workers.shell.status import (
    SAMPLE_EVERY_S,
    BurnHistory,
    of_type,
    status_document,
    status_page_html,
    wall_clock_ms,
)
from workers.shell.wiring import WiredKernel

# aiohttp refuses parameters in content_type=, so the exposition type goes in as a header.
METRICS_HEADERS = {"Content-Type": CONTENT_TYPE_LATEST}


def register_web_pages(
    app: faust.App,
    settings: Settings,
    registry: CollectorRegistry,
    kernels: Sequence[WiredKernel],
    specs: Sequence[KernelSpec[Any]],
    counters: IngestCounters,
) -> None:
    """`/metrics`, `/health`, a page per kernel of `specs` (listing nothing when the
    policies leave it out of `kernels`), and the status page (`/`, `/status`)."""

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(render(registry), headers=dict(METRICS_HEADERS))

    # What this worker's kernels hold now (its partitions only); the fleet-wide view is each
    # kernel's compacted state topic (`guardstream breakers`, `budgets`, `slos`). A kernel the
    # policies leave out lists nothing.
    wired = {kernel.spec.page: kernel for kernel in kernels}
    for spec in specs:
        if spec.page is not None:
            app.page(spec.page)(_state_page(wired.get(spec.page)))

    _register_status_page(app, kernels, counters)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        consumer_ok = app.consumer is not None and not app.consumer.should_stop
        status = 200 if consumer_ok and not app.should_stop else 503
        body = {
            "status": "ok" if status == 200 else "unavailable",
            "mode": str(settings.mode),
        }
        return web.json(body, status=status)


def _state_page(kernel: WiredKernel | None) -> Callable[[Any, Any], Awaitable[Any]]:
    async def states(web: Any, request: Any) -> Any:
        listed = [] if kernel is None else kernel.states()
        return web.json([state.model_dump(mode="json") for state in listed])

    return states


def _register_status_page(
    app: faust.App, kernels: Sequence[WiredKernel], counters: IngestCounters
) -> None:
    history = BurnHistory()
    html = status_page_html()

    def states() -> dict[str, Sequence[Any]]:
        return {
            kernel.spec.page.strip("/"): kernel.states() for kernel in kernels if kernel.spec.page
        }

    async def sample_burn_rates() -> None:
        # The SLO kernel's states only: every 30 s, building every breaker's and budget's
        # record too would be work for nothing.
        slos = [k.states() for k in kernels if k.spec.page and k.spec.page.strip("/") == "slos"]
        history.sample(of_type((s for listed in slos for s in listed), SloState), wall_clock_ms())

    app.timer(interval=SAMPLE_EVERY_S, name="guardstream.status.burn_history")(sample_burn_rates)

    async def page(web: Any, request: Any) -> Any:
        return web.html(html)

    app.page("/")(page)
    app.page("/status")(page)

    @app.page("/status.json")
    async def document(web: Any, request: Any) -> Any:
        return web.json(status_document(states(), counters, history, wall_clock_ms()))
