"""Input events in the audit trail, per audit level (DESIGN §8, issue 6).

- minimal: only dead-lettered input (a decision: the record was refused, and why).
- standard: also every failed, timed-out or rejected tool invocation (`aud.tool.invocation`).
- forensic: every accepted input event and clock tick, in each input partition's order, as it
  was produced (the record's JSON), so `replay --source audit` can re-run the kernels over
  exactly what the worker saw.

One chain per input partition number (`input-p<N>`), shared by the input topics' partitions N
(co-partitioned: the breakers of tool-invocations partition N also read latency-events
partition N), so the trail holds the exact order in which the worker processed them. The
seeds' `aud.tool.invocation` required fields (tool_id, vendor, cost, duration_ms, status,
tokens_used) come with every invocation record.
`input_entries` is pure; `InputAuditSink` seals and sends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from schemas import audit_names as names
from schemas.audit import AuditRecord, AuditSource
from schemas.audit_names import INPUT_POLICY_VERSION
from schemas.clock import ClockTick
from schemas.codec import encode
from schemas.events import CostEvent, InvocationStatus, LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride
from schemas.types import Severity, epoch_ms
from topics.catalog import TopicCatalog, TopicName
from workers.audit.chains import ChainBook
from workers.audit.data_risk import DataRiskRules, risk_payload
from workers.batching.outputs import BatchOutputs
from workers.ingest.stage import IngestResult
from workers.masking.masker import Masker
from workers.policies.audit_event_types import AuditPolicy
from workers.settings import AuditLevel

_EVENT_TYPES: Mapping[type, str] = {
    ToolInvocation: names.TOOL_INVOCATION,
    CostEvent: names.COST_EVENT,
    LatencyEvent: names.LATENCY_EVENT,
    ClockTick: names.CLOCK_TICK,
    BreakerOverride: names.BREAKER_OVERRIDE,
}
OTHER_INPUT = names.OTHER_INPUT
"""A stream record of a kind added later: recorded all the same (forensic means every one)."""
DEAD_LETTERED = names.DEAD_LETTERED
RISK_TRIGGERED = names.RISK_TRIGGERED
UNSEALABLE = names.UNSEALABLE
"""In place of an entry that could not be sealed: where it came from and why, no payload."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputEntry:
    """An audit record to seal for one input record."""

    event_type: str
    ts_ms: int
    severity: Severity
    payload: dict[str, Any]
    source: AuditSource
    user: str | None = None
    """Whose event it was (for an aud.data.sensitive record, masked there)."""

    def sealing(self) -> dict[str, Any]:
        """The keyword arguments that seal it (`ChainBook.seal`, `sealing.seal_masked`)."""
        return {
            "ts_ms": self.ts_ms,
            "severity": self.severity,
            "policy_version": INPUT_POLICY_VERSION,
            "payload": self.payload,
            "source": self.source,
            "user": self.user,
        }


def input_entries(
    level: AuditLevel, result: IngestResult, risk: DataRiskRules | None = None
) -> list[InputEntry]:
    """The audit entries `level` asks for in one ingested batch, in the partition's order
    (accepted and rejected records interleaved by offset); with `risk`, at every level, an
    `aud.risk.triggered` entry after each tool invocation that broke a data-class rule."""
    entries: list[tuple[int, InputEntry]] = []
    for rejected in result.rejected:
        letter = rejected.dead_letter
        ts_ms = epoch_ms(letter.record_ts) if letter.record_ts is not None else 0
        refused: dict[str, Any] = {
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "error_kind": str(letter.error_kind),
            "error": letter.error,
            "error_fields": list(letter.error_fields),
            "original_size": letter.original_size,
        }
        source = AuditSource(topic=letter.topic, partition=letter.partition, offset=letter.offset)
        entries.append(
            (letter.offset, InputEntry(DEAD_LETTERED, ts_ms, Severity.WARNING, refused, source))
        )
    if risk is not None:
        entries += _risk_entries(risk, result)
    if level is not AuditLevel.MINIMAL:
        forensic = level is AuditLevel.FORENSIC
        for item in result.accepted:
            event = item.event
            failed = type(event) is ToolInvocation and event.status is not InvocationStatus.SUCCESS
            if not (forensic or failed):
                continue
            record = item.record
            # The document validation read (standard JSON: `workers.ingest.validate`), not a
            # second parse of the bytes that could fail here, after the record was accepted.
            payload: dict[str, Any] = {"audit_level": level.value, "event": item.document}
            if type(event) is ToolInvocation:
                payload |= _invocation_fields(event)
            source = AuditSource(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_id=event.event_id,
            )
            severity = Severity.WARNING if failed else Severity.INFO
            entry = InputEntry(
                _EVENT_TYPES[type(event)], epoch_ms(event.ts), severity, payload, source
            )
            entries.append((record.offset, entry))
    # Stable: a risk entry (listed first) goes before its invocation's own record.
    entries.sort(key=lambda pair: pair[0])
    return [entry for _, entry in entries]


def _risk_entries(risk: DataRiskRules, result: IngestResult) -> list[tuple[int, InputEntry]]:
    entries = []
    for item in result.accepted:
        event = item.event
        if type(event) is not ToolInvocation:
            continue
        payload = risk_payload(risk, event, item.document)
        if payload is None:
            continue
        record = item.record
        source = AuditSource(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=event.event_id,
        )
        entry = InputEntry(RISK_TRIGGERED, epoch_ms(event.ts), Severity.WARNING, payload, source)
        entries.append((record.offset, entry))
    return entries


def _invocation_fields(event: ToolInvocation) -> dict[str, Any]:
    """The seeds' aud.tool.invocation required fields."""
    return {
        "tool_id": f"{event.vendor}/{event.tool}",
        "vendor": event.vendor,
        "cost": format(event.cost_usd, "f"),
        "duration_ms": event.duration_ms,
        "status": str(event.status),
        "tokens_used": event.tokens_in + event.tokens_out,
    }


def unsealable(entry: InputEntry, exc: Exception) -> InputEntry:
    """The entry recorded instead of `entry` when sealing it raised (a bug, or a payload the
    audit record refuses): the trail notes the gap at its place, and the worker carries on."""
    noted = {
        "event_type": entry.event_type,
        "error": type(exc).__name__,  # not str(exc): it can quote the payload
        "topic": entry.source.topic,
        "partition": entry.source.partition,
        "offset": entry.source.offset,
    }
    return InputEntry(UNSEALABLE, entry.ts_ms, Severity.CRITICAL, noted, entry.source)


Seal = Callable[..., Awaitable[list[AuditRecord]]]
"""`ChainBook.seal`: (partition, event_type, **InputEntry.sealing()) -> the sealed records."""


async def seal_or_note(seal: Seal, partition: int, entry: InputEntry) -> list[AuditRecord]:
    """`entry` sealed into `partition`'s chain, or its `unsealable` note when sealing it fails
    for a reason of its own (pure failures: pydantic's are ValueErrors, orjson's TypeErrors);
    I/O errors of the chain book, and a note that fails too, propagate."""
    try:
        return await seal(partition, entry.event_type, **entry.sealing())
    except (ValueError, TypeError) as exc:
        log.error(
            "input audit entry %s of %s[%s]@%s could not be sealed (%s); noted as %s",
            entry.event_type,
            entry.source.topic,
            entry.source.partition,
            entry.source.offset,
            type(exc).__name__,
            UNSEALABLE,
        )
        note = unsealable(entry, exc)
        return await seal(partition, note.event_type, **note.sealing())


def input_chain_id(partition: int) -> str:
    return f"input-p{partition}"


class InputAuditSink:
    """Writes the input audit records of every ingested batch (an EventSink of the ingest
    agent; in production mode the sends are part of the batch's transaction)."""

    def __init__(
        self,
        app: faust.App,
        catalog: TopicCatalog,
        level: AuditLevel,
        client_options: Mapping[str, Any],
        masker: Masker | None = None,
        audit_policy: AuditPolicy | None = None,
        risk: DataRiskRules | None = None,
    ) -> None:
        self.level = level
        self.risk = risk
        self._outputs = BatchOutputs(app)
        self._audit = catalog.name(TopicName.AUDIT)
        self._chains = ChainBook.on_audit_topic(
            client_options, catalog, input_chain_id, masker, audit_policy
        )
        self.records = 0

    def forget_partition(self, partition: int) -> None:
        self._chains.forget(partition)

    async def handle(self, result: IngestResult) -> None:
        entries = input_entries(self.level, result, self.risk)
        if not entries:
            return
        for entry in entries:
            records = await seal_or_note(self._chains.seal, result.partition, entry)
            for record in records:
                await self._outputs.send(
                    (result.topic, result.partition),
                    self._audit,
                    record.chain.encode(),
                    encode(record),
                )
            self.records += len(records)
