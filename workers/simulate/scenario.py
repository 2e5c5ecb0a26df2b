"""What the simulated fleet looks like and which failures to inject. Immutable values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from workers.errors import ConfigError

# The seeds' sim.chaos failure_injection probabilities (simulation_configs.json).
SEED_CHAOS = {"vendor_timeout": 0.1, "api_error": 0.05, "rate_limit": 0.15, "data_corruption": 0.01}


@dataclass(frozen=True, slots=True)
class Chaos:
    """Per-call probabilities of each injected failure (independent of outages)."""

    vendor_timeout: float = SEED_CHAOS["vendor_timeout"]
    api_error: float = SEED_CHAOS["api_error"]
    rate_limit: float = SEED_CHAOS["rate_limit"]
    data_corruption: float = SEED_CHAOS["data_corruption"]

    def __post_init__(self) -> None:
        total = self.vendor_timeout + self.api_error + self.rate_limit
        for name in ("vendor_timeout", "api_error", "rate_limit", "data_corruption"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"chaos {name}={value}: must be within [0, 1]")
        if total > 1.0:
            raise ConfigError(f"chaos failure probabilities sum to {total:.3f} > 1")

    @classmethod
    def none(cls) -> Chaos:
        return cls(0.0, 0.0, 0.0, 0.0)


def _parse_spec(what: str, text: str, shape: str) -> tuple[str, list[float]]:
    """``NAME:START_S:DURATION_S[:...]`` -> (name, numbers), the time window checked."""
    parts, fields = text.split(":"), shape.split(":")
    try:
        if len(parts) != len(fields):
            raise ValueError(text)
        numbers = [float(part) for part in parts[1:]]
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected {shape}") from None
    if not parts[0]:
        raise ConfigError(f"{what} {text!r}: {fields[0]} is empty")
    start_s, duration_s = numbers[0], numbers[1]
    # NaN compares false with everything, so "not (x >= 0)" also rejects it.
    if not (start_s >= 0 and math.isfinite(start_s)):
        raise ConfigError(f"{what} {text!r}: START_S must be a finite number >= 0")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ConfigError(f"{what} {text!r}: DURATION_S must be a finite number > 0")
    return parts[0], numbers


@dataclass(frozen=True, slots=True)
class Outage:
    """Every call to ``vendor`` fails (503 or timeout) from ``start_s`` for ``duration_s``."""

    vendor: str
    start_s: float
    duration_s: float

    @classmethod
    def parse(cls, text: str) -> Outage:
        """``VENDOR:START_S:DURATION_S``, e.g. ``openai:30:60``."""
        vendor, (start_s, duration_s) = _parse_spec("outage", text, "VENDOR:START_S:DURATION_S")
        return cls(vendor, start_s, duration_s)

    def active(self, vendor: str, elapsed_s: float) -> bool:
        return vendor == self.vendor and self.start_s <= elapsed_s < self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class SpendSpike:
    """Calls by ``team`` cost ``factor`` times more from ``start_s`` for ``duration_s``."""

    team: str
    start_s: float
    duration_s: float
    factor: float

    @classmethod
    def parse(cls, text: str) -> SpendSpike:
        """``TEAM:START_S:DURATION_S:FACTOR``, e.g. ``research:60:30:20``."""
        shape = "TEAM:START_S:DURATION_S:FACTOR"
        team, (start_s, duration_s, factor) = _parse_spec("spike", text, shape)
        if not (factor >= 0 and math.isfinite(factor)):
            raise ConfigError(f"spike {text!r}: FACTOR must be a finite number >= 0")
        return cls(team, start_s, duration_s, factor)

    def active(self, team: str, elapsed_s: float) -> bool:
        return team == self.team and self.start_s <= elapsed_s < self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class VendorProfile:
    name: str
    tools: tuple[str, ...]
    models: tuple[str, ...]
    usd_per_1k_tokens: Decimal
    median_latency_ms: float


DEFAULT_VENDORS = (
    VendorProfile(
        "openai", ("chat", "embeddings"), ("gpt-4o", "gpt-4o-mini"), Decimal("0.005"), 650.0
    ),
    VendorProfile(
        "anthropic", ("messages",), ("claude-sonnet", "claude-haiku"), Decimal("0.006"), 800.0
    ),
    VendorProfile("google", ("generate", "search"), ("gemini-pro",), Decimal("0.004"), 550.0),
    VendorProfile("internal", ("vector-search", "sql"), ("-",), Decimal("0.0002"), 60.0),
)


@dataclass(frozen=True, slots=True)
class Scenario:
    vendors: tuple[VendorProfile, ...] = DEFAULT_VENDORS
    teams: tuple[str, ...] = ("research", "support", "growth", "platform")
    users_per_team: int = 5
    chaos: Chaos = field(default_factory=Chaos)
    outages: tuple[Outage, ...] = ()
    spikes: tuple[SpendSpike, ...] = ()
    # Share of events that are cost (billing) and latency (probe) events rather than calls.
    cost_event_share: float = 0.05
    latency_event_share: float = 0.10
    # Share of calls re-sent with the same event_id (producer retries), to exercise dedup.
    duplicate_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cost_event_share", "latency_event_share", "duplicate_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value}: must be within [0, 1]")
        if self.cost_event_share + self.latency_event_share > 1.0:
            raise ConfigError("cost_event_share + latency_event_share must not exceed 1")
