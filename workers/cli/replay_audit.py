"""``guardstream replay --source audit``: re-run the kernels over the input recorded in a
forensic audit trail and compare every decision with the recorded one (`--verify`), or show
what another policy would have decided differently (what-if, `--policy`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

import orjson
from rich.console import Console

from schemas.clock import parse_event_time
from workers.audit.policy_trail import recorded_policies
from workers.audit.recorded_input import Trail, read_trail
from workers.cli.context import CliContext
from workers.cli.lines import numbered_lines, progress_bar, size_of
from workers.errors import ConfigError, InvalidEventError, ReplayMismatchError
from workers.policies.policy_set import PolicySet, load_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.trail import Projection, Verification, verify_trail

_SHOWN = 50  # differences printed in full; the summary counts all of them


def replay_audit_file(
    cli: CliContext,
    source: IO[bytes],
    policies: PolicySet | None,
    *,
    from_ms: int | None,
    to_ms: int | None,
    verify: bool,
    as_json: bool,
    show_progress: bool,
) -> None:
    with progress_bar("reading the trail", cli.err, enabled=show_progress) as bar:
        task = bar.add_task("trail", total=size_of(source))
        records = list(_records(numbered_lines(source, bar, task)))
    trail = read_trail(records, from_ms=from_ms)
    if policies is None:
        policies = _recorded_policies(cli, trail)
    if to_ms is not None or from_ms is not None:
        trail.decisions = [d for d in trail.decisions if _in_range(d, from_ms, to_ms)]
    if trail.not_forensic:
        cli.err.print(
            f"[yellow]{trail.not_forensic} input record(s) of a non-forensic audit level: "
            "exact replay needs GUARDSTREAM_AUDIT_LEVEL=forensic[/]",
            highlight=False,
        )
    pipeline = PipelineReplay(policies, cli.catalog, cli.settings.key_caps)
    with cli.err.status(f"replaying {sum(map(len, trail.inputs.values())):,} event(s) ..."):
        result = verify_trail(trail, pipeline, to_ms=to_ms)
    _report(cli, result, policies, as_json)
    if verify and result.mismatches:
        raise SystemExit(ReplayMismatchError(result.mismatches).exit_code)


def _recorded_policies(cli: CliContext, trail: Trail) -> PolicySet:
    """The policies the trail's newest `aud.policy.changed` record holds (no --policy given):
    an exact replay runs under what the worker ran under."""
    if not trail.policies:
        cli.err.print(
            "[yellow]the trail records no policies (aud.policy.changed): replaying under "
            "the built-in ones; pass --policy DIR to use the worker's[/]",
            highlight=False,
        )
        return load_policies(None, cli.settings.mode)
    if len(trail.policies) > 1:
        versions = {(p.get("kind"), p.get("version")) for p in trail.policies}
        if len(versions) > len({kind for kind, _ in versions}):
            cli.err.print(
                "[yellow]the policies changed within the trail: replaying under the newest "
                "(decisions made under older versions show as differences)[/]",
                highlight=False,
            )
    try:
        recorded = recorded_policies(trail.policies[-1])
    except ConfigError as exc:
        cli.err.print(f"[red]unusable recorded policies:[/] {exc}; pass --policy DIR")
        raise SystemExit(ConfigError.exit_code) from None
    if recorded.masked:
        cli.err.print(
            f"[yellow]values in the recorded {', '.join(recorded.masked)} policy were masked "
            "as personal data (see the trail's aud.data.sensitive records): replaying under "
            "it as recorded[/]",
            highlight=False,
        )
    return recorded.policies


def _records(lines: Iterator[tuple[int, bytes]]) -> Iterator[Mapping[str, Any]]:
    for number, line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SystemExit(_invalid(f"line {number}: not valid JSON ({exc})")) from None
        if not isinstance(record, dict) or "chain" not in record or "seq" not in record:
            raise SystemExit(_invalid(f"line {number}: not an audit record"))
        yield record


def _invalid(message: str) -> int:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return InvalidEventError.exit_code


def _in_range(line: Mapping[str, Any], from_ms: int | None, to_ms: int | None) -> bool:
    ms = parse_event_time(line["ts"])
    if ms is None:
        return True
    return (from_ms is None or ms >= from_ms) and (to_ms is None or ms <= to_ms)


def _report(cli: CliContext, result: Verification, policies: PolicySet, as_json: bool) -> None:
    versions = sorted({policies.breakers.version, policies.budgets.version, policies.slos.version})
    if as_json:
        document = {
            "events": result.events,
            "recorded": result.recorded,
            "replayed": result.replayed,
            "mismatches": result.mismatches,
            "missing": [list(p) for p in result.missing],
            "extra": [list(p) for p in result.extra],
            "recorded_policy_versions": list(result.policy_versions),
            "replay_policy_versions": versions,
        }
        cli.console.print_json(orjson.dumps(document).decode())
        return
    for sign, label, entries in (("-", "gone", result.missing), ("+", "new", result.extra)):
        for projection in entries[:_SHOWN]:
            cli.console.print(f"{sign} {label}: {_describe(projection)}", highlight=False)
        if len(entries) > _SHOWN:
            cli.console.print(f"{sign} ... {len(entries) - _SHOWN} more {label}")
    different = set(result.policy_versions) - set(versions)
    if different:
        cli.err.print(
            "[yellow]the recorded decisions were made under other policy versions "
            f"({', '.join(v[:12] for v in sorted(different))}): a what-if replay[/]",
            highlight=False,
        )
    cli.err.print(
        f"replayed {result.events:,} event(s) from the audit trail: {result.recorded:,} "
        f"recorded decision(s), {result.replayed:,} replayed, {result.mismatches:,} "
        f"mismatch(es) ({len(result.missing):,} gone, {len(result.extra):,} new)",
        highlight=False,
        soft_wrap=True,
    )


def _describe(projection: Projection) -> str:
    kernel, kind, key, ts, *rest = projection
    return f"{ts} {kernel} {kind} {key} " + " ".join(str(part) for part in rest)
