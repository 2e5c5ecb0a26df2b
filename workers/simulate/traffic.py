"""A seeded traffic model: the same seed and clock readings give the same records.

Records come out as wire bytes (what a producer would send), so the benchmark and the demo
exercise the worker's real decode path; corrupted records are deliberately invalid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from topics.catalog import TopicName
from workers.simulate.scenario import Scenario, VendorProfile

_ERROR_TYPES_API = ("500", "503", "502")
_CORRUPTIONS = ("not-json", "negative-cost", "missing-field", "wrong-type", "oversized")


@dataclass(frozen=True, slots=True)
class SimRecord:
    topic: TopicName
    key: bytes
    value: bytes
    valid: bool
    outcome: str  # success | timeout | api_error | rate_limit | outage | cost | latency | corrupt


def _rfc3339(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


class TrafficGenerator:
    def __init__(self, scenario: Scenario, *, seed: int = 7) -> None:
        self._scenario = scenario
        self._random = random.Random(seed)
        self._counter = 0
        self._recent_ids: list[tuple[bytes, bytes]] = []
        self._users = [
            (team, f"{team}-user-{i}")
            for team in scenario.teams
            for i in range(scenario.users_per_team)
        ]

    def next_record(self, *, elapsed_s: float, now_ms: int) -> SimRecord:
        """One record at ``elapsed_s`` into the run, stamped with event time ``now_ms``."""
        scenario, rnd = self._scenario, self._random
        self._counter += 1
        if rnd.random() < scenario.chaos.data_corruption:
            return self._corrupt(now_ms)
        if self._recent_ids and rnd.random() < scenario.duplicate_share:
            key, value = rnd.choice(self._recent_ids)
            return SimRecord(TopicName.TOOL_INVOCATIONS, key, value, True, "duplicate")
        draw = rnd.random()
        if draw < scenario.cost_event_share:
            return self._cost_event(now_ms)
        if draw < scenario.cost_event_share + scenario.latency_event_share:
            return self._latency_event(elapsed_s, now_ms)
        return self._invocation(elapsed_s, now_ms)

    def _event_id(self) -> str:
        return f"sim-{self._counter:012d}-{self._random.getrandbits(32):08x}"

    def _invocation(self, elapsed_s: float, now_ms: int) -> SimRecord:
        scenario, rnd = self._scenario, self._random
        vendor = rnd.choice(scenario.vendors)
        tool = rnd.choice(vendor.tools)
        team, user = rnd.choice(self._users)
        outcome, status, error_type = self._outcome(vendor, elapsed_s)
        tokens_in, tokens_out = rnd.randint(50, 4000), rnd.randint(10, 1500)
        cost = vendor.usd_per_1k_tokens * Decimal(tokens_in + tokens_out) / 1000
        for spike in scenario.spikes:
            if spike.active(team, elapsed_s):
                cost *= Decimal(str(spike.factor))
        duration_ms = self._latency(vendor, outcome)
        document: dict[str, Any] = {
            "event_id": self._event_id(),
            "ts": _rfc3339(now_ms),
            "vendor": vendor.name,
            "tool": tool,
            "model": rnd.choice(vendor.models),
            "status": status,
            "duration_ms": duration_ms,
            "tokens_in": tokens_in if status == "success" else 0,
            "tokens_out": tokens_out if status == "success" else 0,
            "cost_usd": str(cost.quantize(Decimal("0.000001"))) if status == "success" else "0",
            "user": user,
            "team": team,
            "project": f"{team}-agents",
            "environment": "demo",
            "session_id": f"s-{rnd.getrandbits(24):06x}",
        }
        if error_type is not None:
            document["error_type"] = error_type
        key = f"{vendor.name}/{tool}".encode()
        value = orjson.dumps(document)
        self._remember(key, value)
        return SimRecord(TopicName.TOOL_INVOCATIONS, key, value, True, outcome)

    def _outcome(self, vendor: VendorProfile, elapsed_s: float) -> tuple[str, str, str | None]:
        scenario, rnd = self._scenario, self._random
        if any(outage.active(vendor.name, elapsed_s) for outage in scenario.outages):
            if rnd.random() < 0.5:
                return "outage", "timeout", "timeout"
            return "outage", "error", "503"
        chaos, draw = scenario.chaos, rnd.random()
        if draw < chaos.vendor_timeout:
            return "timeout", "timeout", "timeout"
        draw -= chaos.vendor_timeout
        if draw < chaos.api_error:
            return "api_error", "error", rnd.choice(_ERROR_TYPES_API)
        draw -= chaos.api_error
        if draw < chaos.rate_limit:
            return "rate_limit", "rejected", "rate_limit"
        return "success", "success", None

    def _latency(self, vendor: VendorProfile, outcome: str) -> float:
        if outcome in ("timeout", "outage"):
            return 30_000.0
        return round(self._random.lognormvariate(0.0, 0.5) * vendor.median_latency_ms, 1)

    def _cost_event(self, now_ms: int) -> SimRecord:
        rnd = self._random
        team, user = rnd.choice(self._users)
        vendor = rnd.choice(self._scenario.vendors)
        document = {
            "event_id": self._event_id(),
            "ts": now_ms,
            "team": team,
            "user": user,
            "vendor": vendor.name,
            "cost_usd": f"{rnd.uniform(0.01, 2.0):.4f}",
            "tokens": rnd.randint(100, 20_000),
            "source": "billing-export",
        }
        return SimRecord(TopicName.COST_EVENTS, team.encode(), orjson.dumps(document), True, "cost")

    def _latency_event(self, elapsed_s: float, now_ms: int) -> SimRecord:
        rnd = self._random
        vendor = rnd.choice(self._scenario.vendors)
        tool = rnd.choice(vendor.tools)
        down = any(outage.active(vendor.name, elapsed_s) for outage in self._scenario.outages)
        document = {
            "event_id": self._event_id(),
            "ts": _rfc3339(now_ms),
            "vendor": vendor.name,
            "tool": tool,
            "latency_ms": 30_000.0 if down else self._latency(vendor, "success"),
            "kind": rnd.choice(("total", "ttfb", "probe")),
        }
        key = f"{vendor.name}/{tool}".encode()
        return SimRecord(TopicName.LATENCY_EVENTS, key, orjson.dumps(document), True, "latency")

    def _corrupt(self, now_ms: int) -> SimRecord:
        kind = self._random.choice(_CORRUPTIONS)
        base: dict[str, Any] = {
            "event_id": self._event_id(),
            "ts": now_ms,
            "vendor": "openai",
            "tool": "chat",
            "status": "success",
            "duration_ms": 12.5,
        }
        if kind == "not-json":
            value = b'{"event_id": "broken' + bytes([0xFF, 0xFE])
        elif kind == "negative-cost":
            value = orjson.dumps({**base, "cost_usd": -1.5})
        elif kind == "missing-field":
            value = orjson.dumps({k: v for k, v in base.items() if k != "vendor"})
        elif kind == "wrong-type":
            value = orjson.dumps({**base, "duration_ms": "fast"})
        else:
            value = orjson.dumps({**base, "tool": "x" * 5000})
        return SimRecord(TopicName.TOOL_INVOCATIONS, b"openai/chat", value, False, "corrupt")

    def _remember(self, key: bytes, value: bytes) -> None:
        if self._scenario.duplicate_share > 0:
            self._recent_ids.append((key, value))
            if len(self._recent_ids) > 1000:
                del self._recent_ids[:500]
