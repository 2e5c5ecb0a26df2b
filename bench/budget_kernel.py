"""Budget engine hot path: pre-validated events through `BudgetEngine.apply`, and memory per
budget key (issue 4: "kernel events/s with 10 budgets matching each event across 100k users").

    python -m bench.budget_kernel [--events 200000] [--users 100000]

Ten budgets match every event: global daily and monthly (hard, thresholds, rate limits,
anomaly, rapid consumption and a tripwire on the daily one), per vendor, per team, per project,
per environment, per org, per model, and three split budgets (one state per user, per
api key, per team/user pair) -- so 100k users make ~300k ledgers. Events are ToolInvocations
one millisecond apart with a clock tick every 10,000 events. Throughput is events/s of `apply`
(CPU time of this process); memory is tracemalloc's count for the ledgers divided by the
number of ledgers, after every event has been applied.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from decimal import Decimal
from typing import Any

from schemas.clock import ClockTick
from schemas.events import ToolInvocation
from schemas.policy import PolicyDocument, PolicyKind
from schemas.stream import StreamEvent
from schemas.types import from_epoch_ms
from workers.budgets.engine import BudgetEngine
from workers.policies.budgets import BudgetPolicy

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
THRESHOLDS = [
    {"percent": 50, "action": "notify"},
    {"percent": 80, "action": "notify"},
    {"percent": 95, "action": "throttle"},
    {"percent": 100, "action": "halt"},
]


def ten_budgets() -> dict[str, Any]:
    hard = {"hard": True, "thresholds": THRESHOLDS}
    return {
        "budgets": {
            "global.daily": {
                "period": "daily", "limit_usd": 100_000, **hard,
                "rate_limits": {"requests_per_minute": 1_000_000, "tokens_per_minute": 10**9},
                "anomaly": {"detection_window_ms": 3_600_000},
                "rapid_consumption": {"fraction": 0.1, "window_ms": 900_000},
            },
            "global.monthly": {"period": "monthly", "limit_usd": 1_000_000, **hard},
            "vendor": {"scope": {"vendor": "openai"}, "period": "daily", "limit_usd": 50_000},
            "team": {"scope": {"team": "t*"}, "period": "daily", "limit_usd": 20_000},
            "project": {"scope": {"project": "p*"}, "period": "weekly", "limit_usd": 50_000},
            "environment": {"scope": {"environment": "prod"}, "period": "daily", "limit_usd": 1e5},
            "org": {"scope": {"org": "acme"}, "period": "quarterly", "limit_usd": 10**6},
            "per.user": {
                "scope": {"user": "*"}, "split_by": ["user"], "period": "daily", "limit_usd": 50,
            },
            "per.key": {
                "scope": {"api_key_id": "*"}, "split_by": ["api_key_id"], "period": "daily",
                "limit_usd": 50,
            },
            "per.team.user": {
                "scope": {"team": "*", "user": "*"}, "split_by": ["team", "user"],
                "period": "rolling", "rolling_ms": 86_400_000, "limit_usd": 50,
            },
        },
        "tripwires": {
            "global.daily": {
                "breach_threshold_pct": 12, "consecutive_breach_limit": 3,
                "recovery_threshold_pct": 8, "downgrade_parameters": {"FUSION_MODE": "baseline"},
            }
        },
    }  # fmt: skip


def events(count: int, users: int, seed: int = 7) -> list[StreamEvent]:
    rng = random.Random(seed)
    out: list[StreamEvent] = []
    for n in range(count):
        if n % 10_000 == 9_999:
            out.append(ClockTick.at(T0_MS + n))
        user = rng.randrange(users)
        out.append(
            ToolInvocation(
                event_id=f"e{n}", ts=from_epoch_ms(T0_MS + n), vendor="openai", tool="chat",
                model="gpt-4", status="success", duration_ms=100, tokens_in=300, tokens_out=100,
                cost_usd=Decimal("0.0042"), user=f"u{user}", team=f"t{user % 50}",
                project=f"p{user % 200}", org="acme", environment="prod",
                api_key_id=f"k{user}",
            )
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    document = PolicyDocument.from_spec(PolicyKind.BUDGETS, "bench", ten_budgets())
    policy = BudgetPolicy.from_document(document)
    stream = events(args.events, args.users)
    engine = BudgetEngine(policy)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.process_time()
    decisions = sum(len(engine.apply(event)) for event in stream)
    elapsed = time.process_time() - started
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    ledgers = len(engine.ledgers)
    matching = len(policy.matching({"user": "u1", "team": "t1", "project": "p1", "org": "acme",
                                    "environment": "prod", "vendor": "openai",
                                    "api_key_id": "k1", "model": "gpt-4"}))  # fmt: skip
    print(f"events                 {args.events:>12,}  ({matching} budgets match each)")
    print(f"ledgers (budget keys)  {ledgers:>12,}  decisions {decisions:,}")
    print(f"apply (traced)         {args.events / elapsed:>12,.0f} events/s")
    print(f"memory per budget key  {(after - before) / ledgers:>12,.0f} bytes")
    engine = BudgetEngine(policy)  # again without tracemalloc's overhead
    started = time.process_time()
    for event in stream:
        engine.apply(event)
    print(
        f"apply                  {args.events / (time.process_time() - started):>12,.0f} events/s"
    )


if __name__ == "__main__":
    main()
