"""``guardstream replay``: re-run the kernels offline over recorded input and print decisions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click
import orjson

from schemas.events import INPUT_EVENT_TYPES
from topics.catalog import INPUT_TOPICS
from workers.app import tune_garbage_collector
from workers.cli.context import CliContext, pass_cli, run
from workers.cli.lines import MOMENT, numbered_lines, progress_bar, size_of
from workers.cli.replay_audit import replay_audit_file
from workers.errors import ConfigError, InvalidEventError
from workers.ingest.stage import IngestStage
from workers.kernels.key_cap import CappedMap
from workers.policies.policy_set import PolicySet, load_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.run import Replay, ReplayCounts
from workers.replay.shards import replay_sharded
from workers.replay.topics import read_range, replay_records


@click.command()
@click.option(
    "--input",
    "source",
    type=click.File("rb"),
    help='JSONL input events (and {"type": "clock", "ts": ...} ticks), or - for stdin; with '
    "--source audit, an exported audit trail (`guardstream audit export`).",
)
@click.option(
    "--source",
    "source_kind",
    type=click.Choice(["file", "audit", "topics"]),
    default="file",
    show_default=True,
    help="file: --input holds input events; audit: the input recorded in a forensic audit "
    "trail, compared with the decisions recorded there; topics: the input topics' records "
    "published between --from and --to.",
)
@click.option(
    "--from", "from_ms", type=MOMENT, help="--source audit: event time; topics: publish time."
)
@click.option(
    "--to", "to_ms", type=MOMENT, help="--source audit: event time; topics: publish time."
)
@click.option(
    "--verify",
    is_flag=True,
    help="--source audit: exit 7 when any decision differs from the recorded one.",
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
    source: IO[bytes] | None,
    source_kind: str,
    from_ms: int | None,
    to_ms: int | None,
    verify: bool,
    policy_dir: Path | None,
    as_json: bool,
    jobs: int,
    progress: bool | None,
) -> None:
    """Run the kernels over recorded input and print every decision they make.

    The same code the worker runs, without Kafka. --source file (default): --input holds
    input events; transitions and alerts are printed, each with the event id that caused it,
    and invalid lines are reported on stderr and skipped (exit 4). --source audit: the input
    of a forensic audit trail (--input FILE from `audit export`) is re-run through the whole
    pipeline, under the policies recorded in the trail (aud.policy.changed), and every
    decision compared with the recorded one; the differences are printed (with --policy:
    what that policy would have decided differently), and --verify exits 7 on any.
    """
    tune_garbage_collector()  # a trail or input file is held as millions of small objects
    mode = cli.settings.mode
    policy_path = policy_dir or (Path(cli.settings.policy_dir) if cli.settings.policy_dir else None)
    try:
        policies = load_policies(policy_path, mode)
    except ConfigError as exc:
        cli.err.print(f"[red]invalid policy:[/] {exc}", highlight=False)
        raise SystemExit(ConfigError.exit_code) from None
    show_progress = cli.err.is_terminal if progress is None else progress
    if source_kind == "audit":
        if source is None:
            raise click.UsageError("--source audit needs --input TRAIL.jsonl (audit export)")
        replay_audit_file(
            cli,
            source,
            policies if policy_path is not None else None,
            from_ms=from_ms,
            to_ms=to_ms,
            verify=verify,
            as_json=as_json,
            show_progress=show_progress,
        )
        return
    if source_kind == "topics":
        if from_ms is None or to_ms is None:
            raise click.UsageError("--source topics needs --from and --to")
        _replay_topics(cli, policies, from_ms, to_ms, as_json)
        return
    if source is None:
        raise click.UsageError("--input FILE is required (or - for stdin)")
    if verify or from_ms is not None or to_ms is not None:
        raise click.UsageError("--verify, --from and --to go with --source audit or topics")
    counts, key_maps = _replay_file(cli, source, policies, jobs, as_json, show_progress)
    _summarize(cli, counts, key_maps)
    if counts.invalid:
        raise SystemExit(InvalidEventError.exit_code)


def _summarize(cli: CliContext, counts: ReplayCounts, key_maps: list[CappedMap[Any]]) -> None:
    """On stderr: the invalid lines, the counts, and each key cap the file reached."""
    for error in counts.errors:
        cli.err.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
    cli.err.print(
        f"replayed {counts.events} event(s) and {counts.clock_ticks} clock tick(s): "
        f"{counts.decisions} decision(s), {counts.duplicates} duplicate(s), "
        f"{counts.invalid} invalid line(s)",
        highlight=False,
        soft_wrap=True,
    )
    for keys in key_maps:
        if keys.refused or keys.evicted:
            cli.err.print(
                f"[yellow]{keys.limit.kind.value}: the cap of {keys.limit.max_keys} key(s) was "
                f"reached; {keys.admitted} held, {keys.refused} refused into the overflow "
                f"state(s), {keys.evicted} idle evicted[/]",
                highlight=False,
                soft_wrap=True,
            )


def _replay_file(
    cli: CliContext,
    source: IO[bytes],
    policies: PolicySet,
    jobs: int,
    as_json: bool,
    show_progress: bool,
) -> tuple[ReplayCounts, list[CappedMap[Any]]]:
    """`--source file`: the file's decisions printed; its counts and the capped key maps."""
    caps = cli.settings.key_caps  # the worker's: replay must cap as it does
    horizon_ms = int(cli.settings.dedup_horizon_s * 1000)
    max_ids = cli.settings.dedup_max_ids_per_partition
    emit = _emitter(as_json)
    pipeline = PipelineReplay.for_file(policies, caps)
    if jobs == 1:
        replay = Replay(pipeline, dedup_horizon_ms=horizon_ms, dedup_max_ids=max_ids)
        with progress_bar("replaying", cli.err, enabled=show_progress) as bar:
            task = bar.add_task("replay", total=size_of(source))
            for decision in replay.run(numbered_lines(source, bar, task)):
                emit(decision.to_json())
        sys.stdout.flush()
        return replay.counts, pipeline.key_maps()
    if source.name in ("<stdin>", "-"):
        raise click.UsageError("--jobs needs --input FILE (every shard reads the file)")
    if len(pipeline.kernels) > 1:
        raise click.UsageError(
            "--jobs shards by breaker key; budgets and SLOs span keys, so replay them with --jobs 1"
        )
    with cli.err.status(f"replaying with {jobs} processes ..."):
        lines, counts = replay_sharded(
            Path(source.name),
            policies.breakers,
            cli.settings.mode,
            jobs=jobs,
            dedup_horizon_ms=horizon_ms,
            dedup_max_ids=max_ids,
            max_breaker_keys=caps.breakers,
        )
    for encoded in lines:
        emit(orjson.loads(encoded))
    sys.stdout.flush()
    return counts, []


def _replay_topics(
    cli: CliContext, policies: PolicySet, from_ms: int, to_ms: int, as_json: bool
) -> None:
    """`--source topics`: the worker's path (ingest stage, then the agents' code) over the
    input topics' records published in [from, to], in a deterministic merge order."""
    settings = cli.settings
    catalog = cli.catalog
    with cli.err.status("reading the input topics ..."):
        records = run(read_range(cli.client_options(), catalog, from_ms, to_ms))
    stage = IngestStage(
        {catalog.name(topic): INPUT_EVENT_TYPES[str(topic)] for topic in INPUT_TOPICS},
        dedup_horizon_ms=int(settings.dedup_horizon_s * 1000),
        dedup_max_ids=settings.dedup_max_ids_per_partition,
    )
    emit = _emitter(as_json)
    decisions = 0
    pipeline = PipelineReplay(policies, catalog, settings.key_caps)
    for decision in replay_records(records, stage, pipeline):
        emit(decision.to_json())
        decisions += 1
    sys.stdout.flush()
    counts = stage.counters
    cli.err.print(
        f"replayed {len(records)} record(s) of the input topics: "
        f"{sum(counts.accepted.values())} event(s), {sum(counts.clock_ticks.values())} clock "
        f"tick(s), {sum(counts.duplicates.values())} duplicate(s), "
        f"{sum(counts.rejected.values())} invalid: {decisions} decision(s)",
        highlight=False,
        soft_wrap=True,
    )


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
