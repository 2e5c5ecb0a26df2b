"""Masking speed: what the classification masker costs per audit payload, alert and log line.

    python -m bench.masking [--records 20000] [--rounds 5]

The masker runs on every audit record, alert and log line (DESIGN §8, §10), so its cost on
ordinary data, where nothing is found, is what matters. Inputs, all free of PII:

- payload: a forensic `aud.tool.invocation` payload as `input_entries` builds it (the raw
  event with 16 string fields, 4 attributes and 4 numbers, plus the invocation fields), with a
  unique event id, session id, trace id and timestamp per record;
- cold: the same payloads with the memo of clean strings emptied before each one (the worst
  case: every label value seen for the first time);
- alert: `masked_alert` on a breaker alert (6 labels and a summary);
- log: `mask_text` on a typical worker log line with offsets and a partition.

One line per input with µs per item, the best of `--rounds` interleaved rounds (CPU time of
this process: the machine's cores are shared).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import Alert, AlertStatus, alert_fingerprint
from schemas.types import Severity, rfc3339_ms
from workers.audit.sealing import masked_alert
from workers.masking.masker import Masker, default_masker

T0_MS = 1_795_000_000_000
VENDORS = ["openai", "anthropic", "mistral", "cohere"]
TOOLS = ["chat", "embed", "search_web", "github.create_issue"]
MODELS = ["gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "mistral-large-2411"]


def payloads(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        vendor, tool = rng.choice(VENDORS), rng.choice(TOOLS)
        tokens_in, tokens_out = rng.randrange(100, 4000), rng.randrange(10, 800)
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "ts": rfc3339_ms(T0_MS + n * 7),
            "vendor": vendor,
            "tool": tool,
            "model": rng.choice(MODELS),
            "status": "success",
            "duration_ms": rng.randrange(80, 1500),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": "0.004",
            "user": f"u-{rng.randrange(10_000):05d}",
            "project": rng.choice(["apollo", "gemini", "mercury"]),
            "team": rng.choice(["research", "search", "support"]),
            "org": "acme",
            "api_key_id": f"key-{rng.randrange(50):03d}",
            "environment": "production",
            "session_id": f"sess-{rng.getrandbits(64):016x}",
            "data_classification": "internal",
            "attributes": {
                "region": rng.choice(["eu-west-1", "us-east-2"]),
                "trace_id": f"{rng.getrandbits(128):032x}",
                "agent": "planner",
                "prompt_version": f"v{rng.randrange(1, 40)}.{rng.randrange(10)}.0",
            },
        }
        out.append(
            {
                "audit_level": "forensic",
                "event": event,
                "tool_id": f"{vendor}/{tool}",
                "vendor": vendor,
                "cost": "0.004",
                "duration_ms": event["duration_ms"],
                "status": "success",
                "tokens_used": tokens_in + tokens_out,
            }
        )
    return out


def alerts(count: int) -> list[Alert]:
    out = []
    for n in range(count):
        labels = {
            "vendor": VENDORS[n % 4],
            "tool": TOOLS[n % 4],
            "breaker": f"cb.{VENDORS[n % 4]}.default",
            "state": "open",
            "window": "count:20",
            "policy_id": "cb.default",
        }
        out.append(
            Alert(
                alert_id=f"alert-{n}",
                fingerprint=alert_fingerprint("breaker_open", labels),
                kind="breaker_open",
                severity=Severity.CRITICAL,
                status=AlertStatus.FIRING,
                labels=labels,
                summary=f"breaker {labels['breaker']} opened: failure rate 62.5% over 20 calls",
                value=0.625,
                threshold=0.5,
                starts_at=datetime.fromtimestamp((T0_MS + n) / 1000, UTC),
                policy_version="0" * 64,
            )
        )
    return out


def log_lines(count: int) -> list[str]:
    return [
        f"guardstream.tool-invocations[{n % 12}]: offsets up to {1_000_000 + n * 37} were "
        f"processed before; batch of 500 in {n % 90} ms (event e{n})"
        for n in range(count)
    ]


def measure(run: Callable[[], None], items: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    masker: Masker = default_masker()
    records = payloads(args.records)
    fired = alerts(args.records // 4)
    lines = log_lines(args.records)

    def payload_stream() -> None:
        for payload in records:
            masker.mask(payload, "payload")

    def payload_cold() -> None:
        clean = masker._clean  # the memo: emptied to measure the worst case
        for payload in records:
            clean.clear()
            masker.mask(payload, "payload")

    def alert_stream() -> None:
        for alert in fired:
            masked_alert(masker, alert)

    def log_stream() -> None:
        for line in lines:
            masker.mask_text(line)

    runs = {
        "payload": (payload_stream, len(records)),
        "cold": (payload_cold, len(records)),
        "alert": (alert_stream, len(fired)),
        "log": (log_stream, len(lines)),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):
        for name, (run, items) in runs.items():
            best[name] = min(best[name], measure(run, items))
    for name, micros in best.items():
        print(f"{name:8s} {micros:7.2f} us per item")


if __name__ == "__main__":
    main()
