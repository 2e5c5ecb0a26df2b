"""Replay from the audit trail (DESIGN §8, issue 6): the recorded input, the recorded
decisions, and their comparison with what the kernels decide again.

A forensic trail holds every input event a worker processed, per input partition number in
processing order (`input-p<N>` chains, `workers.audit.inputs`), and every decision it made
(`breakers-p<N>`, `budgets-p<N>`, `slos-p<N>` chains). `read_trail` splits a trail into the
two; `verify_trail` re-runs the pipeline (`PipelineReplay`, the agents' code) over the input,
batch by batch as recorded (a run of records of one topic in a chain is one batch), and
compares every decision with the recorded ones:

- breaker transitions exactly, the causing event id included (a breaker sees its
  partition's events in the recorded order);
- budget and SLO decisions by what they decide (type, kernel, key, event time, from/to,
  alert status and fingerprint, command, record kind): their evidence id is the last event of
  a second, which depends on how partitions interleaved, and is not compared.

Breaker alerts are not audited (the transition is), so they are not compared either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.limits import MAX_RECORD_BYTES
from schemas.stream import StreamEvent
from workers.audit.policy_trail import POLICY_CHAIN, POLICY_CHANGED
from workers.decisions import Decision
from workers.ingest.input_lines import decode_event
from workers.replay.pipeline import PipelineReplay

INPUT_CHAIN_PREFIX = "input-p"
INPUT_EVENT_TYPES = frozenset(
    {
        "aud.tool.invocation",
        "aud.cost.event",
        "aud.latency.event",
        "aud.clock.tick",
        "aud.breaker.override",
        "aud.input.event",
    }
)
DECISION_CHAIN_PREFIXES = ("breakers-p", "budgets-p", "slos-p")

Projection = tuple[Any, ...]


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
            trail.policies += [
                record["payload"] for _, record in entries if record["event_type"] == POLICY_CHANGED
            ]
        elif chain.startswith(DECISION_CHAIN_PREFIXES):
            # Decisions only: not the notices chained with them (aud.data.sensitive,
            # aud.audit.violation), which have no kernel.
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


def replay_trail(trail: Trail, pipeline: PipelineReplay) -> list[Decision]:
    """Every decision the pipeline makes over the trail's input. Partitions are fed one after
    another in batches (runs of one topic); the counters order routed items by event time
    under the watermarks, so what they decide does not depend on that interleaving."""
    decisions: list[Decision] = []
    cursors = dict.fromkeys(trail.inputs, 0)
    # Round-robin over partitions, one batch at a time, as a worker's consumer would.
    while cursors:
        for partition in sorted(cursors):
            inputs = trail.inputs[partition]
            start = cursors[partition]
            if start >= len(inputs):
                del cursors[partition]
                continue
            topic = inputs[start].topic
            end = start
            while end < len(inputs) and inputs[end].topic == topic and end - start < 10_000:
                end += 1
            events = [entry.event for entry in inputs[start:end]]
            decisions += pipeline.batch(topic, partition, events)
            cursors[partition] = end
    return decisions


def project(line: Mapping[str, Any]) -> Projection | None:
    """What is compared of a decision line (see the module docstring); None: not compared."""
    kernel, kind = line["kernel"], line["type"]
    head: Projection = (kernel, kind, line["key"], line["ts"])
    if kernel == "breaker":
        if kind != "transition":
            return None
        return (*head, line["event_id"], line["from"], line["to"])
    if kind == "transition":
        return (*head, line["from"], line["to"])
    if kind == "alert":
        return (*head, line["status"], line["fingerprint"])
    if kind == "control":
        return (*head, line["command"], line["target"])
    return (*head, line.get("record"))


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    recorded: int
    replayed: int
    missing: tuple[Projection, ...]
    """Recorded, not decided again (an alert gone, a transition that no longer happens)."""
    extra: tuple[Projection, ...]
    """Decided again, not recorded (a new alert, a new transition)."""
    policy_versions: tuple[str, ...]
    """The versions the recorded decisions were made under."""

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.extra)


def compare(recorded: Iterable[Mapping[str, Any]], replayed: Iterable[Decision]) -> Verification:
    recorded = list(recorded)
    replayed_lines = [decision.to_json() for decision in replayed]
    want = Counter(p for line in recorded if (p := project(line)) is not None)
    got = Counter(p for line in replayed_lines if (p := project(line)) is not None)
    return Verification(
        events=0,
        recorded=sum(want.values()),
        replayed=sum(got.values()),
        missing=tuple(sorted((want - got).elements(), key=repr)),
        extra=tuple(sorted((got - want).elements(), key=repr)),
        policy_versions=tuple(sorted({str(line.get("policy_version")) for line in recorded})),
    )


def verify_trail(
    trail: Trail, pipeline: PipelineReplay, *, to_ms: int | None = None
) -> Verification:
    """Replay the trail and compare; with `to_ms`, only decisions up to then are compared
    (the input after it still runs: a decision may depend only on what came before it)."""
    replayed = replay_trail(trail, pipeline)
    if to_ms is not None:
        replayed = [d for d in replayed if d.ts_ms <= to_ms]
    result = compare(trail.decisions, replayed)
    events = sum(len(inputs) for inputs in trail.inputs.values())
    return Verification(
        events=events,
        recorded=result.recorded,
        replayed=result.replayed,
        missing=result.missing,
        extra=result.extra,
        policy_versions=result.policy_versions,
    )
