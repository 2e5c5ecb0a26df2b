"""``guardstream replay``: re-run the kernels offline over recorded input and print decisions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click
import orjson

from workers.breakers.engine import BreakerEngine
from workers.budgets.engine import BudgetEngine
from workers.cli.context import CliContext, pass_cli
from workers.cli.lines import numbered_lines, progress_bar, size_of
from workers.errors import ConfigError, InvalidEventError
from workers.policies.policy_set import load_policies
from workers.replay.run import DecisionEngine, Replay
from workers.replay.shards import replay_sharded
from workers.slos.engine import SloEngine
from workers.slos.routing import targets_of


@click.command()
@click.option(
    "--input",
    "source",
    type=click.File("rb"),
    required=True,
    help='JSONL input events (and {"type": "clock", "ts": ...} ticks), or - for stdin.',
)
@click.option(
    "--policy",
    "policy_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Policy directory (breakers.yaml, budgets.yaml, slos.yaml) or one policy file "
    "(default: the runtime mode's built-ins: one breaker, no budgets, no SLOs).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON decision per line (stable).")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes, sharded by breaker key; same output as one (needs a file, not stdin).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@pass_cli
def replay(
    cli: CliContext,
    source: IO[bytes],
    policy_dir: Path | None,
    as_json: bool,
    jobs: int,
    progress: bool | None,
) -> None:
    """Run the kernels over SOURCE in file order and print every decision they make.

    The same code the worker runs, without Kafka: transitions and alerts, each with the
    event id that caused it. Invalid lines are reported on stderr and skipped (exit 4).
    """
    mode = cli.settings.mode
    try:
        policies = load_policies(policy_dir, mode)
    except ConfigError as exc:
        cli.err.print(f"[red]invalid policy:[/] {exc}", highlight=False)
        raise SystemExit(ConfigError.exit_code) from None
    policy = policies.breakers
    engines: list[DecisionEngine] = [BreakerEngine(policy)]
    if policies.budgets.budgets:
        engines.append(BudgetEngine(policies.budgets))
    if targets_of(policies.slos):
        engines.append(SloEngine(policies.slos))
    horizon_ms = int(cli.settings.dedup_horizon_s * 1000)
    max_ids = cli.settings.dedup_max_ids_per_partition
    emit = _emitter(as_json)
    if jobs > 1:
        if source.name in ("<stdin>", "-"):
            raise click.UsageError("--jobs needs --input FILE (every shard reads the file)")
        if len(engines) > 1:
            raise click.UsageError(
                "--jobs shards by breaker key; budgets and SLOs span keys, so replay them "
                "with --jobs 1"
            )
        with cli.err.status(f"replaying with {jobs} processes ..."):
            lines, counts = replay_sharded(
                Path(source.name),
                policy,
                mode,
                jobs=jobs,
                dedup_horizon_ms=horizon_ms,
                dedup_max_ids=max_ids,
            )
        for encoded in lines:
            emit(orjson.loads(encoded))
    else:
        replay = Replay(engines, dedup_horizon_ms=horizon_ms, dedup_max_ids=max_ids)
        show_progress = cli.err.is_terminal if progress is None else progress
        with progress_bar("replaying", cli.err, enabled=show_progress) as bar:
            task = bar.add_task("replay", total=size_of(source))
            for decision in replay.run(numbered_lines(source, bar, task)):
                emit(decision.to_json())
        counts = replay.counts
    sys.stdout.flush()
    for error in counts.errors:
        cli.err.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
    cli.err.print(
        f"replayed {counts.events} event(s) and {counts.clock_ticks} clock tick(s): "
        f"{counts.decisions} decision(s), {counts.duplicates} duplicate(s), "
        f"{counts.invalid} invalid line(s)",
        highlight=False,
        soft_wrap=True,
    )
    if counts.invalid:
        raise SystemExit(InvalidEventError.exit_code)


def _emitter(as_json: bool) -> Callable[[dict[str, Any]], None]:
    """Writes one decision: its JSON line, or a table row (after the header)."""
    write = sys.stdout.buffer.write
    if not as_json:
        write(_HEADER)

    def emit(document: dict[str, Any]) -> None:
        write(orjson.dumps(document) + b"\n" if as_json else _row(document).encode() + b"\n")

    return emit


_COLUMNS = "{ts:<24} {kernel:<8} {key:<28} {change:<30} {event_id}"
_HEADER = (
    _COLUMNS.format(ts="TIME", kernel="KERNEL", key="KEY", change="DECISION", event_id="EVENT")
    + "\n"
).encode()


def _row(line: dict[str, Any]) -> str:
    """One table row from a decision's JSON line (the same data, whichever path made it)."""
    if line["type"] == "transition":
        change = f"{line['from']} -> {line['to']} ({line['reason']})"
    elif line["type"] == "alert":
        change = f"alert {line['status']} {line['severity']} {line['alert_kind']}"
    elif line["type"] == "control":
        change = f"control {line['command']} -> {line['target']}"
    elif line["type"] == "record":
        change = str(line["record"])
    else:
        change = str(line["type"])
    return _COLUMNS.format(
        ts=line["ts"],
        kernel=line["kernel"],
        key=line["key"],
        change=change,
        event_id=line["event_id"],
    )
