"""Verifying audit hash chains (pure: the caller reads a file or the topic and feeds records).

`ChainVerifier` takes audit records in trail order (file line order, or partition then offset
order on the topic). Several chains interleave; a chain's own records must come in seq order.
For every record it checks, cheapest first:

* `unreadable`: not a JSON object with the AuditRecord shape (required keys and JSON types,
  64-digit lowercase hex hashes, seq an int >= 0). Shape only: no pydantic per record.
* `edited`: `hash` is not SHA-256 over the record's canonical bytes. The canonical bytes are
  recomputed from the wire bytes: `orjson.loads`, drop `hash`, `orjson.dumps` with sorted
  keys. That equals `schemas.audit.canonical_bytes(AuditRecord)` because the wire bytes are the
  record's JSON-mode encoding (tested). The hash covers content, not layout: whitespace and
  key order do not matter, but an added field, a changed key or any changed value is an edit.
* per chain, against the chain's head (the last accepted record: its seq and hash):
  - an edited record takes the next position whatever its seq says (its fields cannot be
    trusted), and both its stored and its recomputed hash count as the head's hash: one edit,
    of the payload or of the hash itself, is one finding.
  - seq == head + 1 and `prev_hash` is the head's hash: in order, the record becomes the head.
  - seq == head + 1 and `prev_hash` links elsewhere: `inserted`; the head stays, so the real
    record with that seq still links.
  - seq > head + 1: a gap. The record becomes the head (its link cannot be checked). Seqs of
    the gap that never arrive are `missing` (deletion), reported at the record after the gap.
    If they all arrive later (`reordered` each, when they link to their predecessor), the
    record after the gap came early: `reordered` too. If it does not link to the record
    before it, it is `inserted`.
  - seq <= head, the same hash as the record already seen at that seq: `duplicate` (a replayed
    old record). A different hash: `fork` (two records at one chain position; if it links to
    the same predecessor as the head, either branch's hash is accepted as the next link).
  - seq <= head, never seen: `reordered` (it came after a later record of its chain).
* a chain's first record: seq 0 must have `prev_hash` GENESIS_HASH (else `inserted`). Another
  seq is an anchor when `allow_anchors` (a range of the trail: its predecessor is out of range,
  so the link cannot be checked; the report says "anchored at seq N"), else seqs 0..N-1 are
  `missing`.

A record has at most one finding (unreadable > edited > its chain position). Findings are
ordered by position (line number, or partition then offset); `first_bad` is the earliest.

Memory is bounded per chain, whatever its length or its seqs (a record claiming seq 10**8 is one
gap, `missing seqs 0-99999999`, not a list of them): the head (seq and hash), the first 64 bits
of the hashes of its last `RECENT_SEQS` seqs, and per gap its bounds and the ranges of its seqs
that arrived late (`workers.audit.verify_state`). A seq seen again further back than
`RECENT_SEQS` behind its chain's head is still a finding (`duplicate`), but whether it is an
exact copy or a second record (a fork) cannot be told any more; its message says so. So memory
grows with chains and with gaps (each one a finding), not with records.

Limits (of any hash chain without external checkpoints): deleting a chain's newest records,
or re-sealing a chain consistently from some seq on, leaves a valid chain; an anchor is
whatever comes first in range, so deleting a chain's first records of a range passes a range
check (a full check from seq 0 reports them). A forged record with a seq far ahead is named
first (`missing` or `inserted`), and the genuine records after it are `reordered`.

`ChainRange` selects the records of a time range per chain, by the records' own `ts` (event
time), contiguously: from the chain's first record with ts >= FROM up to, not including, its
first record after that with ts > TO. Event time may go backwards inside a chain; a
contiguous range never cuts holes that would look like deletions.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import orjson

from schemas.audit import GENESIS_HASH, HASH_FIELD
from schemas.types import epoch_ms
from workers.audit.verify_state import (
    RECENT_SEQS,
    RECENT_TRIM_AT,
    ChainState,
    Gap,
    Position,
    prefix,
)

# The AuditRecord fields a record must carry, with the JSON types each must have (shape check
# of the fast path; value rules beyond these are the producer's pydantic model's business).
_REQUIRED_STR_FIELDS: Final = ("record_id", "chain", "event_type", "ts", "severity")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_SORTED: Final = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps
_loads = orjson.loads
# Copying an empty SHA-256 context is cheaper than creating one (OpenSSL 3 looks the
# algorithm up on every construction); measured ~0.25 us a record.
_EMPTY_SHA256: Final = hashlib.sha256()
DEFAULT_MAX_FINDINGS: Final = 1000
_MAX_REMEMBERED_VERSIONS: Final = 4096
"""Policy versions validated once and remembered; past this many each is checked every time."""


class FindingKind(StrEnum):
    UNREADABLE = "unreadable"
    EDITED = "edited"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"
    FORK = "fork"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Finding:
    """One bad record: what is wrong, which record, where it was read."""

    kind: FindingKind
    chain: str | None
    seq: int | None
    record_id: str | None
    position: Position
    message: str

    @property
    def where(self) -> str:
        return describe_position(self.position)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "chain": self.chain,
            "seq": self.seq,
            "record_id": self.record_id,
            "where": self.where,
            "message": self.message,
        }

    def __str__(self) -> str:
        named = f"chain {self.chain} seq {self.seq} ({self.record_id})" if self.chain else "record"
        return f"{self.kind.value}: {named} at {self.where}: {self.message}"


def describe_position(position: Position) -> str:
    if len(position) == 1:
        return f"line {position[0]}"
    return f"partition {position[0]} offset {position[1]}"


@dataclass(frozen=True, slots=True)
class ChainSummary:
    chain: str
    records: int
    first_seq: int
    last_seq: int
    anchored: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anchored": self.anchored,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    records: int
    chains: tuple[ChainSummary, ...]
    findings: tuple[Finding, ...]
    """The earliest `max_findings` findings, in trail order."""
    findings_total: int
    findings_by_kind: Mapping[str, int]

    @property
    def ok(self) -> bool:
        return self.findings_total == 0

    @property
    def first_bad(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def anchors(self) -> list[str]:
        return [f"{c.chain} anchored at seq {c.first_seq}" for c in self.chains if c.anchored]

    def to_json(self, *, chains: bool = True) -> dict[str, Any]:
        """The report as JSON data; without `chains` (a writer may stream them, see
        `chains_json`)."""
        first = self.first_bad
        summary = {
            "ok": self.ok,
            "records": self.records,
            "anchors": self.anchors,
            "first_bad": None if first is None else first.to_json(),
            "findings": [finding.to_json() for finding in self.findings],
            "findings_total": self.findings_total,
            "findings_by_kind": dict(self.findings_by_kind),
        }
        if chains:
            summary["chains"] = {c.chain: c.to_json() for c in self.chains}
        return summary

    def chains_json(self, batch: int = 10_000) -> Iterator[bytes]:
        """The members of the report's `chains` object as JSON text, a batch of chains at a
        time (comma separated, without the braces): a million chains are never a million
        dicts at once."""
        chains = self.chains
        for start in range(0, len(chains), batch):
            members = b",".join(
                orjson.dumps(c.chain) + b":" + orjson.dumps(c.to_json())
                for c in chains[start : start + batch]
            )
            yield (b"," + members) if start else members


class FindingLog:
    """The earliest `max_findings` findings of a verification, every one counted by kind:
    memory stays bounded however broken a trail is."""

    def __init__(self, max_findings: int) -> None:
        self._max_findings = max_findings
        self._kept: list[Finding] = []
        self._dropped: dict[str, int] = {}

    def keep(self, finding: Finding) -> None:
        # Fed findings come in trail order, so the earliest max_findings are kept.
        if len(self._kept) < self._max_findings:
            self._kept.append(finding)
        else:
            kind = finding.kind.value
            self._dropped[kind] = self._dropped.get(kind, 0) + 1

    def earliest(self, more: Iterable[Finding]) -> tuple[tuple[Finding, ...], dict[str, int]]:
        """The earliest `max_findings` of those kept and `more` (in any order), by position,
        and how many there are of each kind, all counted."""
        by_kind: dict[str, int] = dict(self._dropped)

        def counted(findings: Iterable[Finding]) -> Iterator[Finding]:
            for finding in findings:
                by_kind[finding.kind.value] = by_kind.get(finding.kind.value, 0) + 1
                yield finding

        earliest = heapq.nsmallest(
            self._max_findings,
            counted(itertools.chain(self._kept, more)),
            key=lambda f: f.position,
        )
        return tuple(earliest), by_kind


class ChainVerifier:
    """Feed records in trail order with `feed_bytes` / `feed_document`; `report()` at the end."""

    def __init__(
        self, *, allow_anchors: bool = False, max_findings: int = DEFAULT_MAX_FINDINGS
    ) -> None:
        self.allow_anchors = allow_anchors
        self._chains: dict[str, ChainState] = {}
        self._findings = FindingLog(max_findings)
        self._policy_versions: set[str] = set()
        """Policy versions of well-formed records (few: validated once each)."""
        self.records = 0

    # --- input --------------------------------------------------------------------------------

    def feed_bytes(self, raw: bytes, position: Position) -> None:
        """One record as its wire bytes (a topic value or a JSONL line)."""
        self.records += 1
        try:
            document = _loads(raw)
        except orjson.JSONDecodeError:
            self._unreadable(position, "not JSON")
            return
        if type(document) is dict:
            self._check(document, position)
        else:
            self._unreadable(position, "not a JSON object")

    def feed_document(self, document: Mapping[str, Any], position: Position) -> None:
        """One record already parsed from its wire bytes (JSON-mode values)."""
        self.records += 1
        self._check(dict(document), position)

    def feed_all(self, raws: Iterable[tuple[Position, bytes]]) -> VerifyReport:
        for position, raw in raws:
            self.feed_bytes(raw, position)
        return self.report()

    # --- checks -------------------------------------------------------------------------------

    def _check(self, document: dict[str, Any], position: Position) -> None:
        # The fast path checks types and lengths only: a hash equal to the recomputed hex
        # digest and a prev_hash equal to the previous record's hash are hex digests. Anything
        # else takes the slow path, which runs the full `shape_problem` first.
        try:
            claimed = document[HASH_FIELD]
            seq = document["seq"]
            prev_hash = document["prev_hash"]
            policy_version = document["policy_version"]
            source = document.get("source")
            well_typed = (
                type(claimed) is str
                and type(seq) is int
                and type(prev_hash) is str
                and type(document["record_id"]) is str
                and type(document["chain"]) is str
                and type(document["event_type"]) is str
                and type(document["ts"]) is str
                and type(document["severity"]) is str
                and type(document["payload"]) is dict
                and (source is None or type(source) is dict)
                and (policy_version in self._policy_versions or self._admit_version(policy_version))
            )
        except (KeyError, TypeError):  # TypeError: an unhashable policy_version
            well_typed = False
        if not well_typed:
            self._unreadable(position, shape_problem(document) or "not an AuditRecord", document)
            return
        del document[HASH_FIELD]
        digest = _EMPTY_SHA256.copy()
        digest.update(_dumps(document, option=_SORTED))
        recomputed = digest.hexdigest()
        state = self._chains.get(document["chain"])
        if (
            recomputed == claimed
            and state is not None
            and seq == state.head_seq + 1
            and (prev_hash == state.head_hash or state.links_to_head(prev_hash))
        ):
            # The common case, kept short: the next record of a known chain, linked.
            recent = state.recent
            if (
                recent is not None
                and state.recent_base + len(recent) == seq
                and len(recent) < RECENT_TRIM_AT
            ):
                recent.append(int(claimed[:16], 16))
            else:
                state.remember(seq, claimed)
            state.records += 1
            state.head_seq = seq
            state.head_hash = claimed
            state.head_links = None
            return
        self._check_slowly(document, position, claimed, recomputed, state)

    def _admit_version(self, policy_version: Any) -> bool:
        """Whether a policy version not seen yet is a 64-digit hex digest (remembered if so)."""
        if type(policy_version) is str and _HEX_DIGEST.fullmatch(policy_version):
            if len(self._policy_versions) < _MAX_REMEMBERED_VERSIONS:
                self._policy_versions.add(policy_version)
            return True
        return False

    def _check_slowly(
        self,
        document: dict[str, Any],
        position: Position,
        claimed: str,
        recomputed: str,
        state: ChainState | None,
    ) -> None:
        """A record off the common path: its full shape first (the fast path checked types
        only), then its chain position (see the module docstring)."""
        document[HASH_FIELD] = claimed
        problem = shape_problem(document)
        del document[HASH_FIELD]
        if problem is not None:
            self._unreadable(position, problem, document)
            return
        seq: int = document["seq"]
        prev_hash: str = document["prev_hash"]
        edited = recomputed != claimed
        if edited:
            self._add(
                FindingKind.EDITED,
                document,
                position,
                f"hash {claimed[:12]}... does not match the content ({recomputed[:12]}...)",
            )
        if state is None:
            self._start_chain(document, position, claimed, recomputed, edited)
            return
        state.records += 1
        expected = state.head_seq + 1
        if edited:  # its fields cannot be trusted: it takes the next position, whatever it says
            self._advance(state, expected, claimed, recomputed)
        elif seq == expected:
            self._add(
                FindingKind.INSERTED,
                document,
                position,
                f"prev_hash {prev_hash[:12]}... does not link to seq {state.head_seq}",
            )
        elif seq > expected:
            before = prefix(state.head_hash)
            state.add_gap(Gap(expected, seq, prev_hash, document["record_id"], position, before))
            self._advance(state, seq, claimed, recomputed)
        else:
            self._backwards(state, document, position, claimed)

    def _start_chain(
        self,
        document: dict[str, Any],
        position: Position,
        claimed: str,
        recomputed: str,
        edited: bool,
    ) -> None:
        seq: int = document["seq"]
        state = ChainState(seq, claimed, first_seq=seq, anchored=seq != 0 and self.allow_anchors)
        state.move_head(seq, claimed, recomputed)
        self._chains[document["chain"]] = state
        if edited:
            return
        if seq == 0 and document["prev_hash"] != GENESIS_HASH:
            self._add(
                FindingKind.INSERTED, document, position, "seq 0 does not link to the genesis hash"
            )
        elif seq != 0 and not self.allow_anchors:
            state.add_gap(Gap(0, seq, document["prev_hash"], document["record_id"], position, None))

    @staticmethod
    def _advance(state: ChainState, seq: int, claimed: str, recomputed: str) -> None:
        state.remember(seq, claimed)
        state.move_head(seq, claimed, recomputed)

    def _backwards(
        self,
        state: ChainState,
        document: dict[str, Any],
        position: Position,
        claimed: str,
    ) -> None:
        seq: int = document["seq"]
        prev_hash: str = document["prev_hash"]
        if state.seen(seq):
            held = state.known(seq)
            if held is None:
                self._add(
                    FindingKind.DUPLICATE,
                    document,
                    position,
                    f"seq {seq} seen before, more than {RECENT_SEQS} seqs behind its chain's "
                    "head: a replayed copy or a fork (hashes that far back are not kept)",
                )
            elif held == prefix(claimed):
                self._add(
                    FindingKind.DUPLICATE, document, position, f"seq {seq} seen before (replayed)"
                )
            else:
                self._add(
                    FindingKind.FORK, document, position, f"another record already has seq {seq}"
                )
                if seq == state.head_seq and state.known(seq - 1) == prefix(prev_hash):
                    state.head_links = (*(state.head_links or ()), claimed)
            return
        predecessor = state.known(seq - 1)
        if predecessor is not None and predecessor != prefix(prev_hash):
            self._add(
                FindingKind.INSERTED,
                document,
                position,
                f"prev_hash does not link to seq {seq - 1}, which came earlier",
            )
            return
        state.arrived_late(seq, claimed)
        self._add(
            FindingKind.REORDERED,
            document,
            position,
            f"seq {seq} came after seq {state.head_seq} of its chain",
        )

    # --- findings -----------------------------------------------------------------------------

    def _unreadable(
        self, position: Position, problem: str, document: Mapping[str, Any] | None = None
    ) -> None:
        def text(key: str) -> str | None:
            value = None if document is None else document.get(key)
            return value if isinstance(value, str) else None

        seq = None if document is None else document.get("seq")
        finding = Finding(
            FindingKind.UNREADABLE,
            text("chain"),
            seq if type(seq) is int else None,
            text("record_id"),
            position,
            problem,
        )
        self._findings.keep(finding)

    def _add(
        self, kind: FindingKind, document: Mapping[str, Any], position: Position, message: str
    ) -> None:
        finding = Finding(
            kind, document["chain"], document["seq"], document["record_id"], position, message
        )
        self._findings.keep(finding)

    def _gap_findings(self) -> Iterator[Finding]:
        """One finding per gap (judged now that every record was fed), chain by chain."""
        for chain_id, state in self._chains.items():
            for gap in state.gaps or ():
                before = gap.prefix_at_end(gap.after_seq - 1)
                missing = gap.missing_ranges()
                if before is not None and before != prefix(gap.after_prev_hash):
                    kind, message = (
                        FindingKind.INSERTED,
                        f"prev_hash does not link to seq {gap.after_seq - 1}",
                    )
                elif missing:
                    kind, message = FindingKind.MISSING, f"missing {_seq_ranges(missing)} before it"
                else:
                    kind = FindingKind.REORDERED
                    message = f"came before {_seq_ranges(gap.late_ranges())} of its chain"
                yield Finding(
                    kind, chain_id, gap.after_seq, gap.after_record_id, gap.position, message
                )

    def report(self) -> VerifyReport:
        """Everything found so far (gaps are judged with all records fed). Only the earliest
        `max_findings` findings are held at any time; every one is counted by kind."""
        earliest, by_kind = self._findings.earliest(self._gap_findings())
        states = self._chains
        # Sorting the ids alone: no (id, state) pair per chain at once (a million chains).
        chains = tuple(_summary(chain, states[chain]) for chain in sorted(states))
        return VerifyReport(
            records=self.records,
            chains=chains,
            findings=earliest,
            findings_total=sum(by_kind.values()),
            findings_by_kind=by_kind,
        )


def _summary(chain: str, state: ChainState) -> ChainSummary:
    return ChainSummary(chain, state.records, state.first_seq, state.head_seq, state.anchored)


def shape_problem(document: Mapping[str, Any]) -> str | None:
    """Why `document` is not an AuditRecord's JSON (required keys and types), or None."""
    for key in _REQUIRED_STR_FIELDS:
        if type(document.get(key)) is not str:
            return f"{key} missing or not a string"
    for key in ("hash", "prev_hash", "policy_version"):
        value = document.get(key)
        if type(value) is not str or not _HEX_DIGEST.fullmatch(value):
            return f"{key} missing or not a 64-digit lowercase hex digest"
    seq = document.get("seq")
    if type(seq) is not int or seq < 0:
        return "seq missing or not an integer >= 0"
    if type(document.get("payload")) is not dict:
        return "payload missing or not an object"
    source = document.get("source", None)
    if source is not None and type(source) is not dict:
        return "source not an object"
    return None


def _seq_ranges(ranges: list[tuple[int, int]]) -> str:
    """'seq 4', 'seqs 4-6', 'seqs 1, 4-6' from sorted disjoint inclusive ranges (at most five
    spelled out, so a gap of 10**8 seqs is one short line)."""
    spelled = [str(a) if a == b else f"{a}-{b}" for a, b in ranges[:5]]
    more = f" (+{len(ranges) - 5} more ranges)" if len(ranges) > 5 else ""
    label = "seq" if len(ranges) == 1 and ranges[0][0] == ranges[0][1] else "seqs"
    return f"{label} {', '.join(spelled)}{more}"


class ChainRange:
    """Which records belong to a time range, per chain (see the module docstring)."""

    def __init__(self, from_ms: int | None, to_ms: int | None) -> None:
        self.from_ms = from_ms
        self.to_ms = to_ms
        self._started: set[str] = set()
        self._ended: set[str] = set()

    @property
    def everything(self) -> bool:
        return self.from_ms is None and self.to_ms is None

    def includes(self, chain: str, ts: str) -> bool:
        if chain in self._ended:
            return False
        ms = epoch_ms(datetime.fromisoformat(ts))
        if chain not in self._started:
            if self.from_ms is not None and ms < self.from_ms:
                return False
            self._started.add(chain)
        if self.to_ms is not None and ms > self.to_ms:
            self._ended.add(chain)
            return False
        return True

    def includes_document(self, document: Any) -> bool:
        """For a parsed record; unreadable ones (no chain, no valid ts) are always included:
        they cannot be placed in a range, and leaving them out would hide them."""
        if self.everything:
            return True
        if type(document) is not dict:
            return True
        chain, ts = document.get("chain"), document.get("ts")
        if type(chain) is not str or type(ts) is not str:
            return True
        try:
            return self.includes(chain, ts)
        except ValueError:
            return True

    def includes_bytes(self, raw: bytes) -> bool:
        """For a record's wire bytes (see `includes_document`)."""
        if self.everything:
            return True
        try:
            return self.includes_document(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return True
