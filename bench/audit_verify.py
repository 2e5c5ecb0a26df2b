"""Audit trail verification throughput: `guardstream audit verify --input FILE`'s code path.

    python -m bench.audit_verify [--records 1000000] [--chains 8]

Writes a JSONL file of records sealed by `AuditChain` (breaker transitions of `--chains`
interleaved chains, payloads of ~6 fields, ~520 bytes a line) and prints records/s, with the
ratio to raw, of:
- raw: read + orjson.loads of every line (the floor any verification pays),
- verify: read + `ChainVerifier.feed_bytes` of every line (in process, the CLI's own loop),
- cli: `guardstream audit verify --input FILE --json --no-progress` as a subprocess (wall
  time, interpreter start included),
and checks that the file verifies clean.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
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


def raw_pass(path: Path) -> float:
    start = time.perf_counter()
    loads = orjson.loads
    with path.open("rb") as source:
        for line in source:
            loads(line)
    return time.perf_counter() - start


def verify_pass(path: Path) -> tuple[float, bool, int]:
    start = time.perf_counter()
    verifier = ChainVerifier()
    with path.open("rb") as source:
        _feed_file(verifier, ChainRange(None, None), source, lambda done: None)
    report = verifier.report()
    return time.perf_counter() - start, report.ok, report.records


def cli_pass(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    argv = [sys.executable, "-m", "workers.cli.main", "audit", "verify"]
    result = subprocess.run(
        [*argv, "--input", str(path), "--json", "--no-progress"],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start, result.returncode


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
        raw = min(raw_pass(path) for _ in range(2))
        verify_runs = [verify_pass(path) for _ in range(2)]
        verify = min(seconds for seconds, _, _ in verify_runs)
        assert all(ok and n == args.records for _, ok, n in verify_runs), "trail must verify"
        cli, returncode = cli_pass(path)
        assert returncode == 0, f"audit verify exited {returncode}"
    rows = [("raw (read + orjson.loads)", raw), ("verify (ChainVerifier)", verify), ("cli", cli)]
    print(f"{'path':<28} {'records/s':>12} {'vs raw':>8}")
    for label, seconds in rows:
        print(f"{label:<28} {args.records / seconds:>12,.0f} {raw / seconds:>8.2f}")


if __name__ == "__main__":
    main()
