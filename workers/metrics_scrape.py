"""Read a worker's /metrics: for the demo's live view, the benchmark and the tests."""

from __future__ import annotations

import urllib.request

METRIC_PREFIX = "guardstream_"


def scrape(web_port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> dict[str, float]:
    """guardstream samples keyed by name+labels (``x_total{topic="t"}``); {} when unreachable."""
    try:
        with urllib.request.urlopen(f"http://{host}:{web_port}/metrics", timeout=timeout_s) as r:
            text = r.read().decode()
    except OSError:
        return {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(METRIC_PREFIX):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], metric: str) -> float:
    """Sum of one metric over all its label sets."""
    return sum(value for key, value in samples.items() if key.split("{", 1)[0] == metric)


def labels(key: str) -> dict[str, str]:
    """``x{a="1",b="2"}`` -> ``{"a": "1", "b": "2"}`` (label values never hold quotes here)."""
    if "{" not in key:
        return {}
    inner = key.split("{", 1)[1].rstrip("}")
    pairs = (item.split("=", 1) for item in inner.split(",") if item)
    return {name: value.strip('"') for name, value in pairs}
