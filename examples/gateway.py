"""A gateway in about fifty lines: ask guardstream before each call to a vendor, take the
policy's fallback when told no, and report every call made, so the next answer knows it.

    python -m examples.gateway --calls 200 --vendor openai --tool chat --team research \\
        --failure-rate 0.5          # the simulated vendor fails half the calls

Settings come from the environment, as for every guardstream command (GUARDSTREAM_REDIS_URL,
GUARDSTREAM_KAFKA_BOOTSTRAP, GUARDSTREAM_TOPIC_PREFIX); `guardstream worker` and `guardstream
project` must run. With GUARDSTREAM_POLICY_DIR, `--data-class` (repeatable: phi, pii, ...)
is checked against the policies' data-class handling and vendor registry. Prints one line per
call and a count per outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaProducer

from workers.gateway import AsyncGatewayClient, GatewaySettings, report, send_report
from workers.policies.policy_set import load_policies
from workers.settings import Settings


async def call_vendor(failure_rate: float) -> bool:
    """The vendor, simulated: 50 ms, and a 503 at `failure_rate`."""
    await asyncio.sleep(0.05)
    return random.random() >= failure_rate


async def handle(
    gateway: AsyncGatewayClient, producer: AIOKafkaProducer, args: argparse.Namespace
) -> str:
    classes = tuple(args.data_class)
    verdict = await gateway.check(args.vendor, args.tool, team=args.team, data_classes=classes)
    if verdict.decision != "allow":
        reasons = "; ".join(reason.message for reason in verdict.reasons)
        return f"{verdict.decision}: {verdict.fallback_action or 'return_error'} ({reasons})"
    ok = await call_vendor(args.failure_rate)
    event = report(
        args.vendor,
        args.tool,
        status="success" if ok else "error",
        error_type=None if ok else "503",
        duration_ms=50,
        cost_usd=args.cost_usd,
        team=args.team,
        data_classes=classes,
        topic_prefix=Settings().topic_prefix,
    )
    await send_report(producer, event)
    return "called: ok" if ok else "called: 503"


async def main(args: argparse.Namespace) -> Counter[str]:
    settings = Settings()
    outcomes: Counter[str] = Counter()
    producer = AIOKafkaProducer(**settings.kafka_client_options())
    await producer.start()
    policy_path = Path(settings.policy_dir) if settings.policy_dir else None
    policies = load_policies(policy_path, settings.mode)
    gateway_settings = GatewaySettings.from_policies(policies, topic_prefix=settings.topic_prefix)
    try:
        async with AsyncGatewayClient(
            settings.redis_url.get_secret_value(), gateway_settings
        ) as gw:
            for _ in range(args.calls):
                outcome = await handle(gw, producer, args)
                outcomes[outcome.split(" (")[0]] += 1
                print(outcome, flush=True)
                await asyncio.sleep(args.interval)
    finally:
        await producer.stop()
    return outcomes


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--vendor", default="openai")
    parser.add_argument("--tool", default="chat")
    parser.add_argument("--team", default="research")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--cost-usd", default="0.002")
    parser.add_argument(
        "--data-class", action="append", default=[], help="a class the call carries"
    )
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between calls")
    return parser.parse_args(argv)


if __name__ == "__main__":
    for outcome, count in sorted(asyncio.run(main(parse())).items()):
        print(f"{count:6d}  {outcome}")
