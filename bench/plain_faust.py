"""Baseline for bench.ingest: the same job written the plain Faust way.

A stock ``faust.App`` agent iterates the topic one message at a time, validates each value
with the same pydantic model and updates a Faust table per event (DESIGN §11's comparison
point). It serves the two metrics bench.ingest reads, under the same names, so both workers
are timed identically. Configured by the same GUARDSTREAM_* variables; run by bench.ingest.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust

from schemas.events import ToolInvocation
from workers.metrics import EVENTS_ACCEPTED, LAST_BATCH_TIME

_PREFIX = os.environ.get("GUARDSTREAM_TOPIC_PREFIX", "guardstream.")
_TOPIC = f"{_PREFIX}tool-invocations"

app = faust.App(
    os.environ.get("GUARDSTREAM_APP_ID", "plain-faust-bench"),
    broker=f"kafka://{os.environ.get('GUARDSTREAM_KAFKA_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    topic_partitions=int(os.environ.get("GUARDSTREAM_INPUT_PARTITIONS", "4")),
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    web_port=int(os.environ.get("GUARDSTREAM_WEB_PORT", "6066")),
    web_bind="127.0.0.1",
    datadir=os.environ.get("GUARDSTREAM_DATA_DIR", "/tmp/plain-faust-bench"),
)
calls = app.topic(_TOPIC, key_serializer="raw", value_serializer="raw")
calls_per_vendor = app.Table("calls-per-vendor", default=int)
progress: dict[str, float] = {"seen": 0, "last": 0.0}


@app.agent(calls)
async def count_calls(stream: faust.StreamT[bytes]) -> None:
    async for value in stream:
        event = ToolInvocation.model_validate_json(value)
        calls_per_vendor[event.vendor] += 1
        progress["seen"] += 1
        progress["last"] = time.time()


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    lines = [
        f'{EVENTS_ACCEPTED}_total{{topic="{_TOPIC}"}} {progress["seen"]}',
        f"{LAST_BATCH_TIME} {progress['last']}",
    ]
    return web.text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()
