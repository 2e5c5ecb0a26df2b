"""The input and decisions recorded in a forensic audit trail (DESIGN §8, issue 6), read
back: what `replay --source audit` re-runs and compares, and what a worker restores a direct
kernel's state from (`workers.shell.recovery`).

A forensic trail holds every input event a worker processed, per input partition number in
processing order (`input-p<N>` chains, `workers.audit.inputs`), the policies in force
(`aud.policy.changed`) and every decision it made (each kernel's `<kernel>s-p<N>` chains).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import audit_names as names
from schemas.limits import MAX_RECORD_BYTES
from schemas.stream import StreamEvent
from workers.audit.policy_trail import POLICY_CHAIN
from workers.ingest.input_lines import decode_event

INPUT_CHAIN_PREFIX = "input-p"
CASCADE_CHAIN = "dependencies"
"""The dependency cascade's chain (one writer: `workers.cascade.runner`)."""
INPUT_EVENT_TYPES = frozenset(
    {
        names.TOOL_INVOCATION,
        names.COST_EVENT,
        names.LATENCY_EVENT,
        names.CLOCK_TICK,
        names.BREAKER_OVERRIDE,
        names.OTHER_INPUT,
    }
)


@dataclass(slots=True)
class RecordedInput:
    topic: str
    event: StreamEvent


@dataclass(slots=True)
class Trail:
    inputs: dict[int, list[RecordedInput]] = field(default_factory=dict)
    """Input partition number -> its events in processing order."""
    decisions: list[Mapping[str, Any]] = field(default_factory=list)
    """The recorded decisions' lines (`Decision.to_json()` as audited)."""
    policies: list[Mapping[str, Any]] = field(default_factory=list)
    """The `aud.policy.changed` payloads, oldest first (`audit.policy_trail`)."""
    cascade: list[Mapping[str, Any]] = field(default_factory=list)
    """The dependency cascade's `aud.dependency.changed` payloads in chain order: decisions
    derived from breaker states, not from input (`workers.cascade.verify`)."""
    records: int = 0
    not_forensic: int = 0
    """Input records without their event (a standard-level trail): exact replay needs all."""


def read_trail(records: Iterable[Mapping[str, Any]], *, from_ms: int | None = None) -> Trail:
    """Split audit records (JSON-mode dicts, each chain in seq order) into input and
    decisions; input events before `from_ms` (event time) are skipped."""
    trail = Trail()
    chains: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for record in records:
        trail.records += 1
        chains.setdefault(record["chain"], []).append((record["seq"], record))
    for chain, entries in sorted(chains.items()):
        entries.sort(key=lambda entry: entry[0])
        if chain.startswith(INPUT_CHAIN_PREFIX):
            partition = int(chain[len(INPUT_CHAIN_PREFIX) :])
            trail.inputs[partition] = _inputs(entries, trail, from_ms)
        elif chain == POLICY_CHAIN:
            changes = [record for _, record in entries]
            trail.policies += [
                record["payload"]
                for record in changes
                if record["event_type"] == names.POLICY_CHANGED
            ]
        elif chain == CASCADE_CHAIN:
            trail.cascade += [
                record["payload"]
                for _, record in entries
                if record["event_type"] == names.DEPENDENCY_CHANGED
            ]
        else:
            # A kernel's chain. Decisions only: not the notices chained with them
            # (aud.data.sensitive, aud.audit.violation), which have no kernel.
            trail.decisions += [
                record["payload"] for _, record in entries if "kernel" in record["payload"]
            ]
    return trail


def _inputs(
    entries: list[tuple[int, Mapping[str, Any]]], trail: Trail, from_ms: int | None
) -> list[RecordedInput]:
    inputs = []
    for _, record in entries:
        if record["event_type"] not in INPUT_EVENT_TYPES:
            continue  # dead-lettered input: refused, never reached the kernels
        payload = record["payload"]
        if payload.get("audit_level") != "forensic":
            trail.not_forensic += 1
            continue
        # Re-encoded and masked, the document can be longer than the record the worker
        # accepted (and size-checked); only an audit record's own cap applies here.
        event = decode_event(orjson.dumps(payload["event"]), max_bytes=MAX_RECORD_BYTES)
        if from_ms is not None and _ms(event) < from_ms:
            continue
        inputs.append(RecordedInput(record["source"]["topic"], event))
    return inputs


def _ms(event: StreamEvent) -> int:
    return int(event.ts.timestamp() * 1000)
