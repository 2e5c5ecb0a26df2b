"""A worker's web pages: Prometheus metrics, health, and each kernel's states (shell)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from workers.metrics import render
from workers.settings import Settings
from workers.shell.spec import KernelSpec
from workers.shell.wiring import WiredKernel

# aiohttp refuses parameters in content_type=, so the exposition type goes in as a header.
METRICS_HEADERS = {"Content-Type": CONTENT_TYPE_LATEST}


def register_web_pages(
    app: faust.App,
    settings: Settings,
    registry: CollectorRegistry,
    kernels: Sequence[WiredKernel],
    specs: Sequence[KernelSpec[Any]],
) -> None:
    """`/metrics`, `/health`, and a page per kernel of `specs` (listing nothing when the
    policies leave it out of `kernels`)."""

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
