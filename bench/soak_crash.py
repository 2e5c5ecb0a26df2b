"""Run the crash-safety scenarios many times in a row and count the passes (issue 11).

CI runs each scenario of `tests/e2e/test_crash_safety.py` once; a fix for a race is proven only
by many runs. Each round is one pytest process over the whole module (one broker, one
uninterrupted baseline, then every scenario), so rounds are independent and a hang in one is cut
off by pytest-timeout, not by this script.

    python -m bench.soak_crash --rounds 10            # every scenario, 10 rounds
    python -m bench.soak_crash --rounds 3 -k zombie   # one scenario
    python -m bench.soak_crash --rounds 2 --hogs 2    # while two busy loops take both cores

Prints a line per round and a table of passes per scenario; exits 1 if any run failed. The
logs of failed rounds are kept under --log-dir.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

MODULE = "tests/e2e/test_crash_safety.py"
_RESULT = re.compile(rf"^{re.escape(MODULE)}::(\w+) (PASSED|FAILED|ERROR)", re.MULTILINE)


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes that spin on a core each, for as long as the block runs: the
    production machine shared with other work, which is when fencing and timeouts happen."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def run_round(number: int, selection: str | None, log_dir: Path) -> dict[str, str]:
    """One pytest run of the module: scenario -> PASSED / FAILED / ERROR."""
    argv = [sys.executable, "-m", "pytest", MODULE, "-v", "-p", "no:cacheprovider", "-rN"]
    if selection:
        argv += ["-k", selection]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    outcomes = dict(_RESULT.findall(output))
    elapsed = time.monotonic() - started
    failed = [name for name, status in outcomes.items() if status != "PASSED"]
    if failed or not outcomes:
        log = log_dir / f"round-{number}.log"
        log.write_text(output)
        print(
            f"round {number}: {len(failed)} failed {failed} in {elapsed:.0f} s (log: {log})",
            flush=True,
        )
    else:
        print(f"round {number}: {len(outcomes)} passed in {elapsed:.0f} s", flush=True)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("-k", dest="selection", help="pytest -k expression (default: all)")
    parser.add_argument(
        "--hogs", type=int, default=0, help="busy-loop processes running during every round"
    )
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/guardstream-soak"))
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    passes: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    for number in range(1, args.rounds + 1):
        with busy_loops(args.hogs):
            outcomes = run_round(number, args.selection, args.log_dir)
        for name, status in outcomes.items():
            runs[name] += 1
            passes[name] += status == "PASSED"
    print(f"\n{'scenario':<100} passed")
    for name in sorted(runs):
        print(f"{name:<100} {passes[name]}/{runs[name]}")
    return 0 if runs and passes == runs else 1


if __name__ == "__main__":
    sys.exit(main())
