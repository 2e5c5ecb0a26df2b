"""``guardstream audit verify`` / ``audit export``: check the hash-chained audit trail.

Where records come from:

* the audit topic (default): every partition, read_committed, from the oldest retained record
  up to the end offsets taken at the start (later writes are the next run's business), in
  partition then offset order. A chain lives in one partition (its id is the key), so this
  order is each chain's topic order.
* ``verify --input FILE`` (or ``-``): a JSONL file, e.g. one ``audit export`` wrote; blank lines
  are skipped, positions are line numbers.

``--from`` / ``--to`` (RFC 3339 or epoch ms, both inclusive) select by the records' own ``ts``
(event time), not by Kafka timestamps (the produce time, which says nothing about event time:
a replay writes old decisions now), so the topic is always read from its beginning. The range
is contiguous per chain: from the chain's first record with ts >= FROM up to its first record
after that with ts > TO (`workers.audit.verify.ChainRange`). Records that are not readable
enough to place are always included.

Anchoring: with ``--from``, with ``--anchored``, or when retention has already deleted the
start of a topic partition, a chain's first record in range cannot be linked to its
predecessor, so it anchors the chain (reported as "anchored at seq N"); otherwise every chain
must start at seq 0 (its first records missing otherwise). Verifying an exported range file
therefore takes the same ``--from`` (or ``--anchored`` for an export cut by retention).

Exit codes: 0 verified, 6 the trail fails verification (AuditTamperedError; the first bad record
is named), 4 the input file cannot be read, 5 no broker, 3 no audit topic, 1 the export
file cannot be written.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.types import rfc3339_ms
from topics.admin import TopicAdmin
from topics.catalog import TopicName
from topics.connect import start_client
from workers.audit.verify import ChainRange, ChainVerifier, VerifyReport
from workers.cli.context import CliContext, pass_cli, run
from workers.cli.lines import MOMENT, progress_bar, size_of
from workers.errors import (
    AuditTamperedError,
    GuardstreamError,
    InvalidEventError,
    TopicMismatchError,
)

_FETCH_TIMEOUT_MS = 500
_FETCH_MAX_RECORDS = 20_000
_CHUNK_BYTES = 1 << 22  # lines read at once; the progress bar moves once a chunk


_FROM_HELP = "Records with ts >= TIME (RFC 3339 or epoch ms); chains are anchored there."
_TO_HELP = "Records with ts <= TIME (RFC 3339 or epoch ms)."


@click.group()
def audit() -> None:
    """Verify and export the hash-chained audit trail (DESIGN §8)."""


@audit.command()
@click.option("--from", "from_ms", type=MOMENT, help=_FROM_HELP)
@click.option("--to", "to_ms", type=MOMENT, help=_TO_HELP)
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Verify a JSONL file (e.g. from `audit export`; - for stdin) instead of the topic.",
)
@click.option(
    "--anchored",
    is_flag=True,
    help="Chains may start after seq 0 (a file cut by retention); implied by --from.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON summary object (for scripts).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@pass_cli
def verify(
    cli: CliContext,
    from_ms: int | None,
    to_ms: int | None,
    input_path: str | None,
    anchored: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Check every chain of the audit trail: an edited, missing, inserted, reordered, forked,
    duplicated or unreadable record fails (exit 6) and the first bad record is named.

    Reads the audit topic (all partitions, committed records, up to its end at the start), or
    --input FILE. --from/--to select by the records' ts, contiguously per chain.
    """
    show_progress = cli.err.is_terminal if progress is None else progress
    selector = ChainRange(from_ms, to_ms)
    if input_path is None:
        name = cli.catalog.name(TopicName.AUDIT)
        report = run(_verify_topic(cli, name, selector, anchored, show_progress))
        source = f"topic {name}"
    else:
        report = _verify_file(cli, input_path, selector, anchored, show_progress)
        source = "stdin" if input_path == "-" else input_path
    _print_report(cli, report, source, selector, as_json)
    if not report.ok:
        first = report.first_bad
        error = AuditTamperedError(report.findings_total, f"first bad record: {first}")
        cli.err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise SystemExit(error.exit_code)


@audit.command()
@click.option("--from", "from_ms", type=MOMENT, help=_FROM_HELP)
@click.option("--to", "to_ms", type=MOMENT, help=_TO_HELP)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.argument("output", type=click.Path(dir_okay=False, allow_dash=True))
@pass_cli
def export(
    cli: CliContext, from_ms: int | None, to_ms: int | None, progress: bool | None, output: str
) -> None:
    """Write the audit records in range to OUTPUT (JSONL; - for stdout): each line the
    record's bytes exactly as on the topic, in partition then offset order.

    --from/--to select by the records' ts, contiguously per chain; verify the file with
    `audit verify --input OUTPUT --from <the same FROM>`.
    """
    show_progress = cli.err.is_terminal if progress is None else progress
    selector = ChainRange(from_ms, to_ms)
    name = cli.catalog.name(TopicName.AUDIT)
    if output == "-":
        written = run(_export(cli, name, selector, sys.stdout.buffer, show_progress))
        sys.stdout.buffer.flush()
    else:
        # Written next to OUTPUT and renamed when complete: a failed export leaves no partial
        # file an auditor could mistake for the trail.
        partial = Path(f"{output}.partial")
        try:
            with partial.open("wb") as sink:
                written = run(_export(cli, name, selector, sink, show_progress))
            partial.replace(output)
        except OSError as exc:
            cli.err.print(f"[bold red]error:[/] cannot write {output}: {exc}", highlight=False)
            raise SystemExit(GuardstreamError.exit_code) from None
        finally:
            partial.unlink(missing_ok=True)
    cli.err.print(
        f"exported {written} audit record(s) of {name}{_describe_range(selector)}",
        highlight=False,
        soft_wrap=True,
    )


# --- sources ----------------------------------------------------------------------------------


def _verify_file(
    cli: CliContext, path: str, selector: ChainRange, anchored: bool, show_progress: bool
) -> VerifyReport:
    verifier = ChainVerifier(allow_anchors=anchored or selector.from_ms is not None)
    try:
        source: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        cli.err.print(f"[bold red]error:[/] cannot read {path}: {exc}", highlight=False)
        raise SystemExit(InvalidEventError.exit_code) from None
    try:
        with progress_bar("verifying", cli.err, enabled=show_progress) as bar:
            task = bar.add_task("verify", total=size_of(source))
            _feed_file(verifier, selector, source, lambda done: bar.advance(task, done))
    except OSError as exc:
        cli.err.print(f"[bold red]error:[/] cannot read {path}: {exc}", highlight=False)
        raise SystemExit(InvalidEventError.exit_code) from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return verifier.report()


def _feed_file(
    verifier: ChainVerifier,
    selector: ChainRange,
    source: IO[bytes],
    advance: Callable[[int], None],
) -> None:
    """Feed every non-blank line, numbered from 1, in chunks of ~_CHUNK_BYTES (then
    `advance(bytes)`): this is the per-record loop of `verify --input`, kept bare."""
    feed = verifier.feed_bytes
    first = 1
    while chunk := source.readlines(_CHUNK_BYTES):
        if selector.everything:
            for number, line in enumerate(chunk, start=first):
                if not line.isspace():
                    feed(line, (number,))
        else:
            for number, line in enumerate(chunk, start=first):
                if not line.isspace():
                    _feed_selected(verifier, selector, line, (number,))
        first += len(chunk)
        advance(sum(map(len, chunk)))


def _feed_selected(
    verifier: ChainVerifier,
    selector: ChainRange,
    raw: bytes,
    position: tuple[int] | tuple[int, int],
) -> None:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        verifier.feed_bytes(raw, position)  # reported as unreadable
        return
    if selector.includes_document(document):
        if type(document) is dict:
            verifier.feed_document(document, position)
        else:
            verifier.feed_bytes(raw, position)


@dataclass(frozen=True, slots=True)
class _TopicRecord:
    partition: int
    offset: int
    value: bytes | None


async def _topic_records(
    cli: CliContext, name: str, show_progress: bool, on_start: Callable[[bool], None]
) -> AsyncIterator[_TopicRecord]:
    """Every committed record of `name` up to the end offsets taken now, partition by
    partition; `on_start(truncated)` learns whether retention removed any partition's start."""
    # The topic's real partition count, not the catalog's: a partition the catalog does not
    # know about would otherwise go unread, and its records unverified.
    async with TopicAdmin(cli.client_options()) as admin:
        found = await admin.existing([name])
    if name not in found:
        raise TopicMismatchError([f"topic {name} does not exist (guardstream topics create)"])
    consumer = AIOKafkaConsumer(
        **cli.client_options(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await start_client(consumer, cli.settings.kafka_bootstrap, consumer.stop)
    try:
        tps = [TopicPartition(name, p) for p in range(found[name][0])]
        beginnings = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        on_start(any(beginnings[tp] > 0 for tp in tps))
        total = sum(ends[tp] - beginnings[tp] for tp in tps)
        with progress_bar("reading audit", cli.err, enabled=show_progress) as bar:
            task = bar.add_task("audit", total=total or None)
            for tp in tps:
                if ends[tp] <= beginnings[tp]:
                    continue
                consumer.assign([tp])
                consumer.seek(tp, beginnings[tp])
                while await consumer.position(tp) < ends[tp]:
                    fetched = await consumer.getmany(
                        tp, timeout_ms=_FETCH_TIMEOUT_MS, max_records=_FETCH_MAX_RECORDS
                    )
                    batch = fetched.get(tp, [])
                    for record in batch:
                        if record.offset >= ends[tp]:
                            break
                        yield _TopicRecord(tp.partition, record.offset, record.value)
                    bar.advance(task, len(batch))
    finally:
        await consumer.stop()


async def _verify_topic(
    cli: CliContext, name: str, selector: ChainRange, anchored: bool, show_progress: bool
) -> VerifyReport:
    verifier = ChainVerifier(allow_anchors=anchored or selector.from_ms is not None)

    def retention_anchors(truncated: bool) -> None:
        if truncated:
            verifier.allow_anchors = True

    async for record in _topic_records(cli, name, show_progress, retention_anchors):
        position = (record.partition, record.offset)
        if record.value is None:
            verifier.feed_bytes(b"null", position)  # a tombstone: reported as unreadable
        elif selector.everything:
            verifier.feed_bytes(record.value, position)
        else:
            _feed_selected(verifier, selector, record.value, position)
    return verifier.report()


async def _export(
    cli: CliContext, name: str, selector: ChainRange, output: IO[bytes], show_progress: bool
) -> int:
    written = 0
    async for record in _topic_records(cli, name, show_progress, lambda truncated: None):
        if record.value is not None and selector.includes_bytes(record.value):
            output.write(record.value + b"\n")
            written += 1
    return written


# --- output -----------------------------------------------------------------------------------


def _describe_range(selector: ChainRange) -> str:
    parts = []
    if selector.from_ms is not None:
        parts.append(f"from {rfc3339_ms(selector.from_ms)}")
    if selector.to_ms is not None:
        parts.append(f"to {rfc3339_ms(selector.to_ms)}")
    return f" ({' '.join(parts)}, by record ts)" if parts else ""


def _print_report(
    cli: CliContext, report: VerifyReport, source: str, selector: ChainRange, as_json: bool
) -> None:
    exit_code = 0 if report.ok else AuditTamperedError.exit_code
    if as_json:
        summary = report.to_json(chains=False)
        summary.update(
            source=source,
            range={
                "from": None if selector.from_ms is None else rfc3339_ms(selector.from_ms),
                "to": None if selector.to_ms is None else rfc3339_ms(selector.to_ms),
            },
            exit_code=exit_code,
        )
        # One JSON object, "chains" first and written a batch at a time (a trail of a million
        # chains names each), then the other members as print_json writes them.
        sys.stdout.flush()
        out = sys.stdout.buffer
        out.write(b'{"chains":{')
        for chunk in report.chains_json():
            out.write(chunk)
        out.write(b"}," + orjson.dumps(summary, option=orjson.OPT_SORT_KEYS)[1:] + b"\n")
        out.flush()
        return
    console = cli.console
    status = "[bold green]OK[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(
        f"{status} {report.records} record(s) in {len(report.chains)} chain(s) from "
        f"{source}{_describe_range(selector)}",
        soft_wrap=True,
    )
    for anchor in report.anchors:
        console.print(f"  {anchor}", highlight=False, soft_wrap=True)
    if report.ok:
        return
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.findings_by_kind.items()))
    console.print(f"{report.findings_total} finding(s): {counts}", highlight=False)
    console.print(f"first bad record: {report.first_bad}", highlight=False, soft_wrap=True)
    for finding in report.findings:
        console.print(f"  {finding}", highlight=False, soft_wrap=True)
    if len(report.findings) < report.findings_total:
        console.print(f"  ... {report.findings_total - len(report.findings)} more", highlight=False)
