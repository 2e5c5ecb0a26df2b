"""Audit trail verification throughput: `guardstream audit verify --input FILE`'s code path.

    python -m bench.audit_verify [--records 1000000] [--chains 8]

Writes a JSONL file of records sealed by `AuditChain` (breaker transitions of `--chains`
interleaved chains, payloads of ~6 fields, ~520 bytes a line) and prints records/s, with the
ratio to raw, of:
- raw: read + orjson.loads of every line (the floor any verification pays),
- verify: read + `ChainVerifier.feed_bytes` of every line (in process, the CLI's own loop),
- cli: `guardstream audit verify --input FILE --json --no-progress` as a subprocess (wall
  time, interpreter start included),
and checks that the file verifies clean. records/s is wall time; records/cpu-s is the
process's CPU time, which is what to compare when other work shares the machine (the load
average is printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from schemas.codec import encode
from schemas.types import Severity
from workers.audit.chain import AuditChain
from workers.audit.verify import ChainRange, ChainVerifier
from workers.cli.audit_cmd import _feed_file

T0_MS = 1_795_000_000_000
POLICY = "5e" * 32
STATES = ("closed", "open", "half_open")


def generate(path: Path, records: int, chains: int) -> None:
    heads = [AuditChain(f"breakers-p{p}") for p in range(chains)]
    with path.open("wb") as out:
        for n in range(records):
            chain = heads[n % chains]
            record = chain.seal(
                "aud.breaker.transition",
                ts_ms=T0_MS + n * 10,
                severity=Severity.WARNING,
                policy_version=POLICY,
                payload={
                    "breaker_key": f"vendor-{n % 13}:tool-{n % 40}",
                    "from": STATES[n % 3],
                    "to": STATES[(n + 1) % 3],
                    "reason": f"failure_rate {0.5 + (n % 50) / 100:.2f} >= 0.50",
                    "failure_rate": 0.5 + (n % 50) / 100,
                    "window": {"calls": 20 + n % 80, "failures": 10 + n % 40},
                },
            )
            out.write(encode(record) + b"\n")


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


def raw_pass(path: Path) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    loads = orjson.loads
    with path.open("rb") as source:
        for line in source:
            loads(line)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def verify_pass(path: Path) -> tuple[Timing, bool, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    verifier = ChainVerifier()
    with path.open("rb") as source:
        _feed_file(verifier, ChainRange(None, None), source, lambda done: None)
    report = verifier.report()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), report.ok, report.records


def cli_pass(path: Path) -> tuple[Timing, int]:
    """The subprocess's wall time and CPU time (user + system, interpreter start included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    argv = [sys.executable, "-m", "workers.cli.main", "audit", "verify"]
    result = subprocess.run(
        [*argv, "--input", str(path), "--json", "--no-progress"],
        capture_output=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(time.perf_counter() - wall, cpu), result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        started = time.perf_counter()
        generate(path, args.records, args.chains)
        size = path.stat().st_size
        print(
            f"{args.records:,} sealed records in {args.chains} chains, "
            f"{size / args.records:.0f} bytes a line ({time.perf_counter() - started:.1f}s to seal)"
        )
        raw_pass(path)  # warm the page cache
        raw = min((raw_pass(path) for _ in range(2)), key=lambda t: t.cpu_s)
        verify_runs = [verify_pass(path) for _ in range(2)]
        verify = min((timing for timing, _, _ in verify_runs), key=lambda t: t.cpu_s)
        assert all(ok and n == args.records for _, ok, n in verify_runs), "trail must verify"
        cli, returncode = cli_pass(path)
        assert returncode == 0, f"audit verify exited {returncode}"
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = [("raw (read + orjson.loads)", raw), ("verify (ChainVerifier)", verify), ("cli", cli)]
    print(f"{'path':<28} {'records/s':>12} {'records/cpu-s':>14} {'vs raw (cpu)':>13}")
    for label, timing in rows:
        print(
            f"{label:<28} {args.records / timing.wall_s:>12,.0f} "
            f"{args.records / timing.cpu_s:>14,.0f} {raw.cpu_s / timing.cpu_s:>13.2f}"
        )


if __name__ == "__main__":
    main()
