"""SLO replay throughput: `guardstream replay`'s code path with 100 burn-rate SLOs.

    python -m bench.replay_slos [--events 1000000] [--slos 100]

Writes a JSONL file of ToolInvocations (40 tools of 8 vendors, 2 models a vendor, 6 teams,
3 SLA tiers in `attributes.sla_tier`; 0.5 % errors, a 401 in 0.3 %, two tools failing 30 % of
calls for 2 minutes in every 10; durations mostly 100-1500 ms with a slow tail; one clock tick
per 1,000 events; 500 events a second of event time, so 1M events are 33 minutes and every
window up to 30 minutes fills and slides) and a policy of `--slos` burn-rate SLOs:

    2   global availability and latency (group_by [])
    3   per vendor/tool: availability, latency, availability over a calendar month
   16   per vendor: availability (group_by []) and latency (group_by [model])
   12   per team: availability and latency
   10   per tool prefix (`tool: "tool-3*"`), half budgeted by 1-minute timeslices, a no-data
        alert on the others
    1   premium tier (`attributes.sla_tier: premium`)
    8   per vendor, 7-day period, group_by [tool]
   48   per vendor and team, group_by [tool]
        (more or fewer with --slos: the last group grows or shrinks)

so that an event counts for about 12 of them (printed: the routed measures per event). With
`--extras` (default) the policy also holds 2 window objectives (availability per vendor over
60 min, p95 latency over 60 min) and 1 SLA contract (premium tier): 3 more routes for a
premium event, 2 for the others.

In one run it prints events/s and the ratio to raw of:
- raw: read + orjson.loads of every line (the floor any replay pays),
- validate: read + `decode_event` of every line (the ceiling of any replay that validates),
- replay with the default breaker engine and the SLO engine (what `replay` runs with both),
  and with the SLO engine alone,
- the SLO engine alone on events decoded beforehand (its own cost, without decoding),
and tracemalloc bytes per SLO tracker after 1,000 events, a tenth of them and all of them.
Rates are CPU time of this process (as bench.slo_kernel): the machine's cores are shared.

Memory per tracker rises from the first 1,000 events until every tracker has seen a few
windows' worth (counts past Python's cached small ints, open alerts kept for resolution,
sketch bins) and then stays flat: compare the last two figures.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from itertools import islice
from pathlib import Path

import orjson

from bench.jsonl import VENDORS, numbered, raw_rate, replay_rate, write_events
from schemas.events import ToolInvocation
from workers.breakers.spec import BREAKERS
from workers.ingest.input_lines import decode_event
from workers.policies.breakers import default_breaker_policy
from workers.policies.budgets import default_budget_policy
from workers.policies.policy_set import PolicySet
from workers.policies.slos import SloPolicy, load_slo_policy
from workers.replay.pipeline import PipelineReplay
from workers.settings import Mode
from workers.slos.engine import SloEngine
from workers.slos.spec import SLOS

TOOLS = 40
TEAMS = ["research", "search", "support", "billing", "growth", "platform"]
TIERS = ["standard"] * 12 + ["premium"] * 5 + ["enterprise"] * 3
BAD_TOOLS = (7, 23)
DECODED_SAMPLE = 200_000


def generate(path: Path, events: int, seed: int = 7) -> None:
    rng = random.Random(seed)

    def fields(n: int) -> dict[str, object]:
        tool = rng.randrange(TOOLS)
        vendor = VENDORS[tool % len(VENDORS)]
        burst = tool in BAD_TOOLS and (n // 500) % 600 < 120  # 2 min of every 10
        roll = rng.random()
        status, error = (
            ("error", "503") if roll < (0.3 if burst else 0.004)
            else ("timeout", None) if roll < (0.32 if burst else 0.005)
            else ("error", "401") if roll < (0.323 if burst else 0.008)
            else ("success", None)
        )  # fmt: skip
        slow = rng.random() < 0.01
        document: dict[str, object] = {
            "vendor": vendor,
            "tool": f"tool-{tool}",
            "model": f"{vendor}-{'large' if rng.random() < 0.3 else 'small'}",
            "status": status,
            "duration_ms": rng.randrange(2000, 9000) if slow else rng.randrange(100, 1500),
            "tokens_in": 300,
            "tokens_out": 120,
            "cost_usd": "0.0042",
            "team": rng.choice(TEAMS),
            "attributes": {"sla_tier": rng.choice(TIERS)},
        }
        if error:
            document["error_type"] = error
        return document

    write_events(path, events, fields)


def policy_spec(slos: int, extras: bool) -> dict[str, object]:
    """The policy described in the module docstring, in guardstream's slos.yaml shape."""
    available = {"kind": "availability", "excluded_error_types": ["400", "401", "403"]}
    fast = {"kind": "latency", "latency_threshold_ms": 2000}
    entries: dict[str, dict[str, object]] = {
        "global.availability": {"sli": available, "target": 0.999, "group_by": []},
        "global.latency": {"sli": fast, "target": 0.99, "group_by": []},
        "vt.availability": {"sli": available, "target": 0.995},
        "vt.latency": {"sli": fast, "target": 0.99},
        "vt.availability.monthly": {
            "sli": available,
            "target": 0.999,
            "period": {"calendar": "monthly", "tz": "UTC"},
        },
    }
    # (name, selector, availability target, latency group_by): vendors, then teams
    by_vendor_and_team: list[tuple[str, dict[str, str], float, list[str]]] = [
        *((f"vendor.{v}", {"vendor": v}, 0.999, ["model"]) for v in VENDORS),
        *((f"team.{t}", {"team": t}, 0.995, []) for t in TEAMS),
    ]
    for name, selector, available_target, latency_group_by in by_vendor_and_team:
        entries[f"{name}.availability"] = {
            "sli": available, "target": available_target, "selector": selector, "group_by": []
        }  # fmt: skip
        entries[f"{name}.latency"] = {
            "sli": fast, "target": 0.99, "selector": selector, "group_by": latency_group_by
        }  # fmt: skip
    for digit in range(10):
        entry: dict[str, object] = {
            "sli": available,
            "target": 0.99,
            "selector": {"tool": f"tool-{digit}*"},
            "group_by": [],
        }
        if digit % 2:
            entry.update(budgeting="timeslices", timeslice="1m", timeslice_target=0.95)
        else:
            entry["no_data"] = "10m"
        entries[f"tools.{digit}"] = entry
    entries["premium.availability"] = {
        "sli": available,
        "target": 0.999,
        "selector": {"attributes.sla_tier": "premium"},
        "group_by": [],
    }
    for vendor in VENDORS:
        entries[f"vendor.{vendor}.availability.7d"] = {
            "sli": available, "target": 0.995, "period": "7d", "selector": {"vendor": vendor},
            "group_by": ["tool"],
        }  # fmt: skip
    pairs = [(vendor, team) for team in TEAMS for vendor in VENDORS]
    for n in range(max(0, slos - len(entries))):
        vendor, team = pairs[n % len(pairs)]
        entries[f"vendor-team.{vendor}.{team}.{n}"] = {
            "sli": available, "target": 0.995, "selector": {"vendor": vendor, "team": team},
            "group_by": ["tool"],
        }  # fmt: skip
    spec: dict[str, object] = {"slos": dict(islice(entries.items(), slos))}
    if extras:
        spec["objectives"] = {
            "vendor_availability": {
                "metric": "availability", "window": "60m", "target": 0.995,
                "warning_at": 0.99, "critical_at": 0.985, "group_by": ["vendor"],
            },
            "latency_p95": {
                "metric": "latency_quantile", "quantile": 0.95, "window": "60m",
                "target": 2000, "warning_at": 3000, "critical_at": 5000,
            },
        }  # fmt: skip
        spec["sla_contracts"] = {
            "sla.premium": {
                "tier": "premium", "availability_percent": 99.9, "response_time_p50_ms": 200,
                "response_time_p99_ms": 1000, "period": {"calendar": "monthly", "tz": "UTC"},
            }
        }  # fmt: skip
    return spec


def load_policy(directory: Path, slos: int, extras: bool) -> SloPolicy:
    (directory / "slos.yaml").write_bytes(orjson.dumps(policy_spec(slos, extras)))  # JSON is YAML
    return load_slo_policy(directory, Mode.PRODUCTION)


def validate_rate(path: Path) -> float:
    started = time.process_time()
    count = 0
    for _, line in numbered(path):
        decode_event(line)
        count += 1
    return count / (time.process_time() - started)


def engine_rate(path: Path, policy: SloPolicy) -> tuple[float, float, int]:
    """The SLO engine alone on the first DECODED_SAMPLE lines, decoded beforehand: events/s,
    routed measures per input event, decisions."""
    events = [decode_event(line) for _, line in islice(numbered(path), DECODED_SAMPLE)]
    engine = SloEngine(policy)
    calls = [event for event in events if isinstance(event, ToolInvocation)]
    measures = sum(len(engine.router.route(event)) for event in calls)
    apply = engine.apply
    started = time.process_time()
    decisions = sum(len(apply(event)) for event in events)
    elapsed = time.process_time() - started
    return len(events) / elapsed, measures / len(calls), decisions


def bytes_per_tracker(path: Path, policy: SloPolicy, lines: int) -> tuple[float, int]:
    """tracemalloc of an SLO engine fed the first `lines` lines (decoded outside it; the
    events are dropped as they go, so only what the engine keeps is counted)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = SloEngine(policy)
    for _, line in islice(numbered(path), lines):
        engine.apply(decode_event(line))
    engine.router._cache.clear()  # the match cache is per router, not per tracker
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(engine), len(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--slos", type=int, default=100)
    parser.add_argument(
        "--extras",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="2 window objectives and 1 SLA contract besides the SLOs (default: on)",
    )
    parser.add_argument(
        "--memory", action=argparse.BooleanOptionalAction, default=True, help="memory per tracker"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(Path(tmp), args.slos, args.extras)
        path = Path(tmp) / "events.jsonl"
        generate(path, args.events)
        lines, raw = raw_rate(path, time.process_time)
        validated = validate_rate(path)
        breakers = default_breaker_policy(Mode.PRODUCTION)
        policies = PolicySet(breakers, default_budget_policy(), policy)
        both, both_decisions = replay_rate(
            path, PipelineReplay.for_file(policies, kernels=[BREAKERS, SLOS]), time.process_time
        )
        alone, slo_decisions = replay_rate(
            path, PipelineReplay.for_file(policies, kernels=[SLOS]), time.process_time
        )
        decoded, per_event, _ = engine_rate(path, policy)
        points = (1_000, lines // 10, lines) if args.memory else ()
        memory = [(n, *bytes_per_tracker(path, policy, n)) for n in points]
    objectives, contracts = len(policy.objectives), len(policy.contracts)
    print(
        f"policy: {len(policy.slos)} burn-rate SLOs, {objectives} window objectives, "
        f"{contracts} SLA contracts; {per_event:.1f} routed measures per event"
    )
    print(
        f"lines                        {lines:>12,}   "
        f"decisions {both_decisions:,} (SLO alone {slo_decisions:,})"
    )
    print(f"raw read + orjson.loads      {raw:>12,.0f} lines/s")
    print(f"read + decode_event only     {validated:>12,.0f} lines/s  ({validated / raw:.2f}x raw)")
    print(f"replay, breakers + SLOs      {both:>12,.0f} events/s ({both / raw:.2f}x raw)")
    print(f"replay, SLOs only            {alone:>12,.0f} events/s ({alone / raw:.2f}x raw)")
    print(
        f"SLO engine, pre-decoded      {decoded:>12,.0f} events/s "
        f"(first {min(lines, DECODED_SAMPLE):,} lines)"
    )
    for n, size, trackers in memory:
        print(f"memory per tracker, {n:>9,}  {size:>9,.0f} bytes  ({trackers} trackers)")


if __name__ == "__main__":
    main()
