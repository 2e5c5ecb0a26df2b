"""Replay from the audit trail (DESIGN §8, issue 6): the recorded input, the recorded
decisions, and their comparison with what the kernels decide again.

A forensic trail holds every input event a worker processed, per input partition number in
processing order (`input-p<N>` chains, `workers.audit.inputs`), and every decision it made
(`breakers-p<N>`, `budgets-p<N>`, `slos-p<N>` chains). `workers.audit.recorded_input.read_trail`
splits a trail into the two; `verify_trail` re-runs the pipeline (`PipelineReplay`, the
agents' code) over the input, batch by batch as recorded (a run of records of one topic in a
chain is one batch), and compares every decision with the recorded ones:

- breaker transitions exactly, the causing event id included (a breaker sees its
  partition's events in the recorded order);
- budget and SLO decisions by what they decide (type, kernel, key, event time, from/to,
  alert status and fingerprint, command, record kind): their evidence id is the last event of
  a second, which depends on how partitions interleaved, and is not compared.

Breaker alerts are not audited (the transition is), so they are not compared either.

The dependency cascade's decisions (`dependencies` chain) follow from breaker states, not
from input: each recorded step is derived again from the facts it records
(`workers.cascade.verify`) and compared by (subject, from, to, cause).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workers.audit.recorded_input import Trail
from workers.cascade.verify import Projection as CascadeProjection
from workers.cascade.verify import verify_cascade
from workers.decisions import Decision
from workers.replay.pipeline import PipelineReplay

Projection = tuple[Any, ...]


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
    policies = pipeline.policies
    cascade = verify_cascade(trail.cascade, policies.dependencies.graph, policies.breakers.key)
    events = sum(len(inputs) for inputs in trail.inputs.values())
    return Verification(
        events=events,
        recorded=result.recorded + cascade.recorded,
        replayed=result.replayed + cascade.recorded - len(cascade.missing) + len(cascade.extra),
        missing=result.missing + tuple(_cascade_projection(p) for p in cascade.missing),
        extra=result.extra + tuple(_cascade_projection(p) for p in cascade.extra),
        policy_versions=result.policy_versions,
    )


def _cascade_projection(change: CascadeProjection) -> Projection:
    subject, before, after, cause = change
    return ("dependency", "change", subject, "", before, after, " -> ".join(cause))
