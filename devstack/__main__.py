"""``python -m devstack``: run the local Kafka + Redis stack, or fetch the jars.

    python -m devstack fetch
    python -m devstack up [--brokers N] [--no-redis] [--env-file PATH]

``up`` prints ``GUARDSTREAM_KAFKA_BOOTSTRAP=...`` / ``GUARDSTREAM_REDIS_URL=...`` once
everything answers, then runs until SIGINT/SIGTERM (or until a server dies: exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from devstack.kafka import KAFKA_VERSION, KafkaCluster, ensure_kafka_jars
from devstack.process import DevstackError
from devstack.redis import RedisServer

EXIT_OK = 0
EXIT_FAILURE = 1
_HEALTH_CHECK_INTERVAL_S = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Real Kafka (KRaft, from Maven jars) and redis-server on loopback ports.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = sub.add_parser("fetch", help="download the Kafka broker jars into the cache")
    fetch.add_argument("--kafka-version", default=KAFKA_VERSION, help="default: %(default)s")

    up = sub.add_parser("up", help="start Kafka (and Redis) until SIGINT/SIGTERM")
    up.add_argument("--brokers", type=int, default=1, help="Kafka nodes (default: 1)")
    up.add_argument("--no-redis", action="store_true", help="do not start redis-server")
    up.add_argument("--env-file", type=Path, help="also write the variables to this file")
    up.add_argument(
        "--data-dir", type=Path, help="keep Kafka data here (default: a temp dir, removed)"
    )
    up.add_argument("--kafka-version", default=KAFKA_VERSION, help="default: %(default)s")
    return parser


def _cmd_fetch(args: argparse.Namespace) -> int:
    print(ensure_kafka_jars(args.kafka_version))
    return EXIT_OK


@contextlib.contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM; the old handlers come back afterwards."""
    event = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _publish(variables: dict[str, str], env_file: Path | None) -> None:
    text = "".join(f"{key}={value}\n" for key, value in variables.items())
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(text)
    # Flushed at once: `make demo` and scripts read these lines while we keep running.
    sys.stdout.write(text)
    sys.stdout.flush()


def _cmd_up(args: argparse.Namespace) -> int:
    if args.brokers < 1:
        raise DevstackError("--brokers must be >= 1")
    with contextlib.ExitStack() as stack, _stop_requested() as stop:
        kafka = stack.enter_context(
            KafkaCluster(
                args.brokers,
                data_dir=args.data_dir,
                keep_data=args.data_dir is not None,
                version=args.kafka_version,
            )
        )
        variables = {"GUARDSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap_servers}
        redis: RedisServer | None = None
        if not args.no_redis:
            redis = stack.enter_context(RedisServer())
            variables["GUARDSTREAM_REDIS_URL"] = redis.url
        _publish(variables, args.env_file)
        if args.env_file is not None:
            # Stale addresses are worse than none: the file goes away with the servers.
            stack.callback(args.env_file.unlink, missing_ok=True)
        print("devstack: up; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(_HEALTH_CHECK_INTERVAL_S):
            if not kafka.running:
                print(f"devstack: a Kafka broker died\n{kafka.log_tail(40)}", file=sys.stderr)
                return EXIT_FAILURE
            if redis is not None and not redis.running:
                print(f"devstack: redis-server died\n{redis.log_tail(40)}", file=sys.stderr)
                return EXIT_FAILURE
        print("devstack: stopping", file=sys.stderr, flush=True)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            return _cmd_fetch(args)
        return _cmd_up(args)
    except DevstackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
