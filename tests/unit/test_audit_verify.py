"""ChainVerifier against every kind of tampering, on a trail of interleaved sealed chains."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.audit import GENESIS_HASH, AuditRecord, canonical_bytes
from schemas.codec import encode
from schemas.types import Severity
from workers.audit.chain import AuditChain
from workers.audit.verify import ChainRange, ChainVerifier, Finding, FindingKind, VerifyReport
from workers.audit.verify_state import RECENT_SEQS
from workers.cli.audit_cmd import _feed_file

T0_MS = 1_794_960_000_000
CHAINS = ("breakers-p0", "breakers-p1", "slos-p0")
POLICY = "ab" * 32


def seal_next(
    chain: AuditChain,
    payload: dict[str, Any],
    *,
    event_type: str = "aud.breaker.transition",
    ts_ms: int = T0_MS,
    severity: Severity = Severity.INFO,
) -> AuditRecord:
    """`chain`'s next record, sealed under POLICY."""
    return chain.seal(
        event_type, ts_ms=ts_ms, severity=severity, policy_version=POLICY, payload=payload
    )


def sealed_trail(per_chain: int = 10) -> list[bytes]:
    """Round-robin interleaving of CHAINS, `per_chain` records each, as wire bytes."""
    chains = [AuditChain(name) for name in CHAINS]
    lines: list[bytes] = []
    for n in range(per_chain):
        for index, chain in enumerate(chains):
            record = seal_next(
                chain,
                {"breaker_key": f"vendor-{index}:chat", "n": n, "rate": 0.25 * n},
                ts_ms=T0_MS + n * 1000 + index,
            )
            lines.append(encode(record))
    return lines


def verify(lines: list[bytes], *, anchors: bool = False) -> VerifyReport:
    verifier = ChainVerifier(allow_anchors=anchors)
    return verifier.feed_all(((number,), line) for number, line in enumerate(lines, start=1))


def line_of(lines: list[bytes], chain: str, seq: int) -> int:
    for number, line in enumerate(lines, start=1):
        document = orjson.loads(line)
        if (document["chain"], document["seq"]) == (chain, seq):
            return number
    raise LookupError((chain, seq))


def kinds(report: VerifyReport) -> list[FindingKind]:
    return [finding.kind for finding in report.findings]


def first_bad(lines: list[bytes], *expected: FindingKind) -> Finding:
    """The earliest finding of verifying `lines`, once the findings are exactly `expected`."""
    report = verify(lines)
    assert kinds(report) == list(expected)
    assert report.first_bad is not None
    return report.first_bad


def test_a_clean_trail_passes() -> None:
    report = verify(sealed_trail())
    assert report.ok
    assert report.records == 30
    assert [(c.chain, c.records, c.first_seq, c.last_seq) for c in report.chains] == [
        (name, 10, 0, 9) for name in sorted(CHAINS)
    ]
    assert report.first_bad is None
    assert report.to_json()["ok"] is True


def test_a_byte_edited_inside_a_payload_is_the_first_bad_record() -> None:
    lines = sealed_trail()
    target = line_of(lines, "breakers-p1", 4)
    lines[target - 1] = lines[target - 1].replace(b'"n":4', b'"n":5')
    first = first_bad(lines, FindingKind.EDITED)
    assert (first.chain, first.seq, first.record_id, first.where) == (
        "breakers-p1",
        4,
        "breakers-p1:4",
        f"line {target}",
    )


def test_a_byte_edited_inside_the_hash_is_one_finding() -> None:
    lines = sealed_trail()
    target = line_of(lines, "slos-p0", 6)
    document = orjson.loads(lines[target - 1])
    old_hash = document["hash"]
    new_hash = ("1" if old_hash[10] != "1" else "2").join((old_hash[:10], old_hash[11:]))
    lines[target - 1] = lines[target - 1].replace(old_hash.encode(), new_hash.encode(), 1)
    first = first_bad(lines, FindingKind.EDITED)
    assert (first.chain, first.seq) == ("slos-p0", 6)


def test_a_dropped_record_is_missing_at_the_record_after_it() -> None:
    lines = sealed_trail()
    dropped = line_of(lines, "breakers-p0", 3)
    del lines[dropped - 1]
    first = first_bad(lines, FindingKind.MISSING)
    assert (first.chain, first.seq) == ("breakers-p0", 4)
    assert "seq 3" in first.message


def test_a_dropped_first_record_is_missing_unless_anchored() -> None:
    lines = sealed_trail()
    del lines[line_of(lines, "breakers-p0", 0) - 1]
    assert kinds(verify(lines)) == [FindingKind.MISSING]
    anchored = verify(lines, anchors=True)
    assert anchored.ok
    assert anchored.anchors == ["breakers-p0 anchored at seq 1"]


def test_two_swapped_records_are_reordered_naming_the_early_one() -> None:
    lines = sealed_trail()
    a, b = line_of(lines, "breakers-p1", 5), line_of(lines, "breakers-p1", 6)
    lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
    first = first_bad(lines, FindingKind.REORDERED, FindingKind.REORDERED)
    assert (first.chain, first.seq, first.where) == ("breakers-p1", 6, f"line {a}")


def test_a_forged_record_with_its_own_hash_but_a_wrong_link_is_inserted() -> None:
    lines = sealed_trail()
    genuine = AuditRecord.model_validate_json(lines[line_of(lines, "slos-p0", 5) - 1])
    forger = AuditChain("slos-p0", seq=5, prev_hash="f" * 64)
    forged = seal_next(
        forger, {"forged": True}, event_type=genuine.event_type, severity=Severity.CRITICAL
    )
    assert hashlib.sha256(canonical_bytes(forged)).hexdigest() == forged.hash
    at = line_of(lines, "slos-p0", 5)
    lines.insert(at - 1, encode(forged))
    first = first_bad(lines, FindingKind.INSERTED)
    assert (first.chain, first.seq, first.where) == (
        "slos-p0",
        5,
        f"line {at}",
    )


def test_a_replayed_old_record_is_a_duplicate() -> None:
    lines = sealed_trail()
    old = lines[line_of(lines, "breakers-p0", 2) - 1]
    lines.insert(20, old)
    first = first_bad(lines, FindingKind.DUPLICATE)
    assert (first.seq, first.where) == (2, "line 21")


def test_a_second_record_at_one_seq_is_a_fork_and_the_chain_goes_on() -> None:
    lines = sealed_trail()
    genuine = AuditRecord.model_validate_json(lines[line_of(lines, "breakers-p1", 7) - 1])
    twin = seal_next(
        AuditChain("breakers-p1", seq=7, prev_hash=genuine.prev_hash),
        {"restarted": "worker"},
        event_type=genuine.event_type,
    )
    at = line_of(lines, "breakers-p1", 7) + 1  # right after the genuine seq 7
    lines.insert(at - 1, encode(twin))
    first = first_bad(lines, FindingKind.FORK)
    assert (first.seq, first.where) == (7, f"line {at}")


@pytest.mark.parametrize(
    "garbage",
    [b'{"record_id": "x", "chain"', b"not json", b"[1, 2]", b'{"chain": "breakers-p0"}'],
)
def test_a_truncated_or_garbage_line_is_unreadable(garbage: bytes) -> None:
    lines = sealed_trail()
    lines.insert(4, garbage)
    first = first_bad(lines, FindingKind.UNREADABLE)
    assert first.where == "line 5"


def test_a_truncated_record_is_unreadable_and_its_successor_misses_it() -> None:
    lines = sealed_trail()
    at = line_of(lines, "breakers-p0", 2)
    lines[at - 1] = lines[at - 1][:100]
    first = first_bad(lines, FindingKind.UNREADABLE, FindingKind.MISSING)
    assert first.where == f"line {at}"


def test_the_first_bad_record_is_the_earliest_of_several() -> None:
    lines = sealed_trail()
    late = line_of(lines, "breakers-p0", 8)
    early = line_of(lines, "slos-p0", 3)
    lines[late - 1] = lines[late - 1].replace(b'"n":8', b'"n":9')
    del lines[early - 1]  # slos-p0 seq 4 is now missing its predecessor
    report = verify(lines)
    assert report.findings_total == 2
    first = report.first_bad
    assert first is not None
    assert (first.kind, first.chain, first.seq) == (FindingKind.MISSING, "slos-p0", 4)


def test_seq_zero_must_link_to_genesis() -> None:
    record = seal_next(AuditChain("c", seq=0, prev_hash="e" * 64), {})
    report = verify([encode(record)], anchors=True)
    assert kinds(report) == [FindingKind.INSERTED]


def test_findings_are_capped_but_counted() -> None:
    lines = [line.replace(b'"vendor-', b'"VENDOR-') for line in sealed_trail()]
    verifier = ChainVerifier(max_findings=5)
    report = verifier.feed_all(((n,), line) for n, line in enumerate(lines, start=1))
    assert len(report.findings) == 5
    assert report.findings_total == 30
    assert report.findings_by_kind == {"edited": 30}


def test_a_range_is_contiguous_per_chain_by_record_time() -> None:
    selector = ChainRange(from_ms=T0_MS + 2000, to_ms=T0_MS + 5000)
    kept = [line for line in sealed_trail() if selector.includes_bytes(line)]
    seqs = {(d["chain"], d["seq"]) for d in map(orjson.loads, kept)}
    assert seqs == {(chain, seq) for chain in CHAINS for seq in range(2, 5)} | {("breakers-p0", 5)}
    report = verify(kept, anchors=True)
    assert report.ok
    assert "breakers-p0 anchored at seq 2" in report.anchors
    # Event time going backwards inside a chain does not cut a hole in its range.
    ordered = ChainRange(from_ms=10, to_ms=None)
    assert [
        ordered.includes("c", ts) for ts in ("1970-01-01T00:00:00.020Z", "1970-01-01T00:00:00.005Z")
    ] == [
        True,
        True,
    ]


# --- the fast path's canonical bytes ------------------------------------------------------------

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=10), json_value, max_size=6),
    ts_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    chain_id=st.text(min_size=1, max_size=20),
)
def test_the_fast_path_hashes_what_canonical_bytes_hashes(
    payload: dict[str, Any], ts_ms: int, chain_id: str
) -> None:
    record = seal_next(
        AuditChain(chain_id),
        payload,
        event_type="aud.data.sensitive",
        ts_ms=ts_ms,
        severity=Severity.WARNING,
    )
    wire = orjson.loads(encode(record))
    del wire["hash"]
    assert orjson.dumps(wire, option=orjson.OPT_SORT_KEYS) == canonical_bytes(record)
    assert verify([encode(record)]).ok


def test_genesis_is_the_first_link() -> None:
    assert orjson.loads(sealed_trail(1)[0])["prev_hash"] == GENESIS_HASH


def test_the_hash_covers_content_not_layout() -> None:
    """Whitespace or key order of a line is not content: re-encoded records still verify."""
    relaid = [
        orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
        for line in sealed_trail()
    ]
    assert verify(relaid).ok


def test_an_edited_seq_is_one_finding() -> None:
    lines = sealed_trail()
    at = line_of(lines, "breakers-p0", 4)
    lines[at - 1] = lines[at - 1].replace(b'"seq":4', b'"seq":40')
    first = first_bad(lines, FindingKind.EDITED)
    assert first.record_id == "breakers-p0:4"


def test_a_forged_record_far_ahead_is_named_first() -> None:
    lines = sealed_trail()
    forged = seal_next(AuditChain("slos-p0", seq=1000, prev_hash="d" * 64), {})
    at = line_of(lines, "slos-p0", 6)
    lines.insert(at - 1, encode(forged))
    report = verify(lines)
    first = report.first_bad
    assert first is not None
    assert (first.kind, first.seq, first.where) == (FindingKind.MISSING, 1000, f"line {at}")
    # The genuine records after it are out of place relative to it: reported, not hidden.
    assert set(kinds(report)[1:]) == {FindingKind.REORDERED}


def test_two_writers_on_one_chain_fork_at_every_shared_seq() -> None:
    lines = sealed_trail(6)
    genuine = AuditRecord.model_validate_json(lines[line_of(lines, "breakers-p1", 3) - 1])
    second_writer = AuditChain("breakers-p1", seq=3, prev_hash=genuine.prev_hash)
    for n in range(3):
        record = seal_next(second_writer, {"writer": 2, "n": n}, ts_ms=T0_MS + n)
        lines.append(encode(record))
    report = verify(lines)
    assert kinds(report) == [FindingKind.FORK] * 3
    assert [f.seq for f in report.findings] == [3, 4, 5]


def test_unreadable_names_what_is_wrong() -> None:
    line = orjson.loads(sealed_trail(1)[0])
    line["prev_hash"] = "XYZ"
    report = verify([orjson.dumps(line)])
    assert report.first_bad is not None
    assert report.first_bad.kind is FindingKind.UNREADABLE
    assert "prev_hash" in report.first_bad.message
    assert report.first_bad.chain == "breakers-p0"


def test_the_cli_file_loop_selects_a_range_and_skips_blank_lines() -> None:
    lines = sealed_trail()
    text = b"".join(line + b"\n\n" for line in lines)
    advanced: list[int] = []
    verifier = ChainVerifier(allow_anchors=True)
    _feed_file(verifier, ChainRange(T0_MS + 3000, None), io.BytesIO(text), advanced.append)
    report = verifier.report()
    assert report.ok
    assert report.records == 3 * 7
    assert sum(advanced) == len(text)
    assert report.chains[0].first_seq == 3


# --- bounded memory: per chain, not per record or per missing seq --------------------------------


def raw_chain(chain: str, seqs: range, prev_hash: str = GENESIS_HASH) -> list[bytes]:
    """Correctly sealed wire records of `chain` at `seqs`, each linked to the one before: the
    verifier's own canonical form (sorted-key JSON without `hash`), without pydantic's cost."""
    lines = []
    for seq in seqs:
        document: dict[str, Any] = {
            "record_id": f"{chain}:{seq}",
            "chain": chain,
            "seq": seq,
            "prev_hash": prev_hash,
            "event_type": "aud.breaker.transition",
            "ts": "2026-11-21T10:00:00.000Z",
            "severity": "info",
            "policy_version": POLICY,
            "source": None,
            "payload": {"n": seq},
        }
        prev_hash = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
        lines.append(orjson.dumps({**document, "hash": prev_hash}))
    return lines


def peak_allocated(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_record_at_seq_10_to_the_8_is_one_missing_range_in_bounded_memory() -> None:
    """Was 27 s and 4 GB: every missing seq was listed before it was summarised."""
    line = raw_chain("breakers-p0", range(10**8, 10**8 + 1), prev_hash="a" * 64)[0]
    reports: list[VerifyReport] = []
    peak = peak_allocated(lambda: reports.append(verify([line])))
    assert kinds(reports[0]) == [FindingKind.MISSING]
    assert reports[0].findings[0].message == "missing seqs 0-99999999 before it"
    assert peak < 256 * 1024


def test_late_records_split_a_gap_into_missing_ranges() -> None:
    lines = raw_chain("c", range(10))
    forged = raw_chain("c", range(10**9, 10**9 + 1), prev_hash="d" * 64)
    # The forged far-ahead record first, then the genuine ones 3..6 (late), 0..2 and 7..9 gone.
    report = verify([*lines[:1], *forged, *lines[3:7]])
    assert [(f.kind, f.seq) for f in report.findings] == [
        (FindingKind.MISSING, 10**9),
        *[(FindingKind.REORDERED, seq) for seq in range(3, 7)],
    ]
    assert report.findings[0].message == "missing seqs 1-2, 7-999999999 before it"


def test_a_long_chain_keeps_recent_hashes_only() -> None:
    """Memory per chain is bounded (it was ~170 bytes a record for the whole chain)."""
    lines = raw_chain("input-p0", range(20_000))
    verifier = ChainVerifier()
    tracemalloc.start()
    try:
        for number, line in enumerate(lines[:2_000], start=1):
            verifier.feed_bytes(line, (number,))
        after_2k = tracemalloc.get_traced_memory()[0]
        for number, line in enumerate(lines[2_000:], start=2_001):
            verifier.feed_bytes(line, (number,))
        after_20k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_20k - after_2k < 16 * 1024
    assert verifier.report().ok


def test_a_copy_far_behind_the_head_is_still_found() -> None:
    lines = raw_chain("c", range(RECENT_SEQS * 2))
    near, far = lines[-10], lines[0]
    report = verify([*lines, near, far])
    assert [(f.kind, f.seq) for f in report.findings] == [
        (FindingKind.DUPLICATE, RECENT_SEQS * 2 - 10),
        (FindingKind.DUPLICATE, 0),
    ]
    assert report.findings[0].message == f"seq {RECENT_SEQS * 2 - 10} seen before (replayed)"
    assert "a replayed copy or a fork" in report.findings[1].message


def test_a_late_record_links_to_the_record_before_its_gap_far_behind() -> None:
    lines = raw_chain("c", range(RECENT_SEQS * 3))
    # seq 10 is held back until the chain is far ahead: it still links to seq 9.
    report = verify([*lines[:10], *lines[11:], lines[10]])
    assert [(f.kind, f.seq) for f in report.findings] == [
        (FindingKind.REORDERED, 11),
        (FindingKind.REORDERED, 10),
    ]
    assert report.findings[0].message == "came before seq 10 of its chain"


def test_the_chains_stream_as_json_in_batches_as_to_json_has_them() -> None:
    report = verify(sealed_trail(2))
    streamed = b"{" + b"".join(report.chains_json(batch=2)) + b"}"
    assert orjson.loads(streamed) == report.to_json()["chains"]
    assert "chains" not in report.to_json(chains=False)
