"""Audit trail verification throughput and memory: `guardstream audit verify --input FILE`.

    python -m bench.audit_verify [--records 1000000] [--chains 8] [--gap-seq 100000000]
    python -m bench.audit_verify --records 1000000 --chains 1000000   # memory per chain

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

Memory: the peak of Python allocations while verifying in process (tracemalloc: the
verifier's state and its report, the file read in chunks) and per chain; the CLI's peak RSS
(VmHWM), text and --json output, next to the RSS of verifying an empty file (the
interpreter and its imports). Gap: one correctly sealed record at seq `--gap-seq` (a chain
whose earlier records are all missing), verified in process: time, peak allocations and the
finding, which names the missing seqs as one range.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
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


# Runs the console script's `main` and, at exit, prints the process's peak RSS (VmHWM). Not
# ru_maxrss: Linux carries the forking parent's high-water mark into a child's (and into its
# own after exec), so a child of a large benchmark process would report the benchmark's size.
_CLI_WITH_PEAK_RSS = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak-rss-kib", line.split()[1], file=sys.stderr)
atexit.register(peak)
sys.argv[0] = "guardstream"
from workers.cli.main import main
main()
"""


def cli_pass(path: Path, *, as_json: bool = True) -> tuple[Timing, int, int]:
    """The subprocess's wall time, CPU time (user + system, interpreter start included), exit
    code and peak RSS in bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    argv = [sys.executable, "-c", _CLI_WITH_PEAK_RSS, "audit", "verify", "--input", str(path)]
    flags = ["--json", "--no-progress"] if as_json else ["--no-progress"]
    result = subprocess.run([*argv, *flags], capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    marker = result.stderr.rsplit(b"peak-rss-kib ", 1)
    peak_rss = int(marker[1].split()[0]) * 1024 if len(marker) == 2 else 0
    return Timing(time.perf_counter() - wall, cpu), result.returncode, peak_rss


def traced_verify_peak(path: Path) -> int:
    """Peak bytes of Python allocations while verifying `path` in process and reporting."""
    tracemalloc.start()
    try:
        verify_pass(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def gap_pass(seq: int) -> tuple[float, int, str]:
    """One sealed record at `seq`, verified: seconds, peak allocation bytes, the finding."""
    record = AuditChain("breakers-p0", seq=seq, prev_hash="a" * 64).seal(
        "aud.breaker.transition",
        ts_ms=T0_MS,
        severity=Severity.WARNING,
        policy_version=POLICY,
        payload={"breaker_key": "vendor-0:tool-0"},
    )
    raw = encode(record)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        verifier = ChainVerifier()
        verifier.feed_bytes(raw, (1,))
        report = verifier.report()
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return elapsed, peak, str(report.first_bad)


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--gap-seq", type=int, default=100_000_000)
    parser.add_argument(
        "--trail", type=Path, help="Keep the generated trail here; reuse it if it exists."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.jsonl"
        empty.write_bytes(b"")
        _, _, baseline_rss = cli_pass(empty, as_json=False)
        path = args.trail or Path(tmp) / "audit.jsonl"
        started = time.perf_counter()
        if not path.exists():
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
        traced_peak = traced_verify_peak(path)
        _, returncode, text_rss = cli_pass(path, as_json=False)
        assert returncode == 0, f"audit verify exited {returncode}"
        cli, returncode, json_rss = cli_pass(path)
        assert returncode == 0, f"audit verify --json exited {returncode}"
    gap_s, gap_peak, gap_finding = gap_pass(args.gap_seq)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = [("raw (read + orjson.loads)", raw), ("verify (ChainVerifier)", verify), ("cli", cli)]
    print(f"{'path':<28} {'records/s':>12} {'records/cpu-s':>14} {'vs raw (cpu)':>13}")
    for label, timing in rows:
        print(
            f"{label:<28} {args.records / timing.wall_s:>12,.0f} "
            f"{args.records / timing.cpu_s:>14,.0f} {raw.cpu_s / timing.cpu_s:>13.2f}"
        )
    print(
        f"memory: in process, peak allocations {mib(traced_peak)} "
        f"({traced_peak / args.chains:,.0f} bytes per chain, {traced_peak / args.records:,.0f} "
        f"per record); cli peak RSS {mib(text_rss)} "
        f"(text), {mib(json_rss)} (--json); an empty file {mib(baseline_rss)}"
    )
    print(
        f"gap: one record at seq {args.gap_seq:,} verified in {gap_s * 1000:.1f} ms, peak "
        f"allocations {mib(gap_peak)}: {gap_finding}"
    )


if __name__ == "__main__":
    main()
