"""What `audit verify` keeps per chain (see workers.audit.verify): bounded whatever the chain.

A chain's head (seq and hash), the first 64 bits of the hashes of its last RECENT_SEQS seqs,
and per gap (seqs skipped when a later one arrived) its bounds and the ranges of its seqs that
arrived late. So memory grows with chains and gaps, never with records or with a gap's size.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Final

# `Position`: (line,) for a file, (partition, offset) for the topic; tuples sort in trail order.
Position = tuple[int] | tuple[int, int]

RECENT_SEQS: Final = 256
"""Per chain, the hashes of this many seqs up to its head are kept (their first 64 bits): enough
to tell a replayed copy from a fork near the head, where writers collide, in 2 KiB a chain."""
RECENT_TRIM_AT: Final = RECENT_SEQS + RECENT_SEQS // 4
"""The window grows by appending and is cut back to RECENT_SEQS past this (amortised O(1))."""


def prefix(digest: str) -> int:
    """The first 64 bits of a hex digest: what a chain keeps of its older records' hashes."""
    return int(digest[:16], 16)


@dataclass(slots=True)
class Gap:
    """Seqs `first`..`after_seq - 1` of a chain were skipped when `after_seq` arrived."""

    first: int
    after_seq: int
    after_prev_hash: str
    after_record_id: str
    position: Position
    before: int | None
    """Hash prefix of seq `first - 1` (the chain's head when the gap opened); None at seq 0."""
    late: list[list[int]] = field(default_factory=list)
    """The gap's seqs that arrived after all: sorted, disjoint [start, end, hash prefix of end]
    (late records usually come in order, so this is one range or a few)."""

    def holds(self, seq: int) -> bool:
        return self.first <= seq < self.after_seq

    def _range_index(self, seq: int) -> int:
        """Index of the last late range starting at or before `seq` (-1 if none)."""
        return bisect_right(self.late, seq, key=lambda span: span[0]) - 1

    def arrived(self, seq: int) -> bool:
        index = self._range_index(seq)
        return index >= 0 and seq <= self.late[index][1]

    def prefix_at_end(self, seq: int) -> int | None:
        """The hash prefix of late seq `seq` if a late range ends there (else not kept)."""
        index = self._range_index(seq)
        if index >= 0 and self.late[index][1] == seq:
            return self.late[index][2]
        return None

    def add_late(self, seq: int, prefix: int) -> None:
        late = self.late
        index = self._range_index(seq)
        if index >= 0 and late[index][1] == seq - 1:
            late[index][1:] = [seq, prefix]
        else:
            index += 1
            late.insert(index, [seq, seq, prefix])
        following = index + 1
        if following < len(late) and late[following][0] == seq + 1:
            late[index][1:] = late[following][1:]
            del late[following]

    def late_ranges(self) -> list[tuple[int, int]]:
        return [(start, end) for start, end, _ in self.late]

    def missing_ranges(self) -> list[tuple[int, int]]:
        missing, start = [], self.first
        for late_start, late_end, _ in self.late:
            if late_start > start:
                missing.append((start, late_start - 1))
            start = late_end + 1
        if start < self.after_seq:
            missing.append((start, self.after_seq - 1))
        return missing


class ChainState:
    """What verification keeps of one chain: its head, a window of recent hashes, its gaps."""

    __slots__ = (
        "anchored",
        "first_seq",
        "gaps",
        "head_hash",
        "head_links",
        "head_seq",
        "recent",
        "recent_base",
        "records",
    )

    def __init__(self, head_seq: int, head_hash: str, *, first_seq: int, anchored: bool) -> None:
        self.head_seq = head_seq
        self.head_hash = head_hash
        """The hash of the (first) record at the head: the next record links to it."""
        self.head_links: tuple[str, ...] | None = None
        """Other hashes the next record may link to: the head's recomputed one when it was
        edited, a fork's twin at the head (rare: None otherwise, no tuple a chain)."""
        self.first_seq = first_seq
        self.anchored = anchored
        self.records = 1
        self.recent: array[int] | None = None
        """Hash prefixes of seqs recent_base, recent_base + 1, ... up to the head (0 for the
        seqs of a gap that have not arrived); None while the chain has one record."""
        self.recent_base = head_seq
        self.gaps: list[Gap] | None = None
        """In seq order (each opened ahead of the one before)."""

    def remember(self, seq: int, digest: str) -> None:
        """Keep the hash of an accepted record: the next head (call before moving the head)
        or a late record of a gap (kept only while inside the window)."""
        recent = self.recent
        if recent is None:  # the chain's second record: start the window at the head
            recent = self.recent = array("Q", (prefix(self.head_hash),))
            self.recent_base = self.head_seq
        offset = seq - self.recent_base
        size = len(recent)
        if offset < size:
            if offset >= 0:
                recent[offset] = prefix(digest)
            return
        if offset - size >= RECENT_SEQS:  # a jump past the whole window: start it afresh
            self.recent = array("Q", (prefix(digest),))
            self.recent_base = seq
            return
        if offset > size:  # the seqs of a gap: not (yet) arrived
            recent.frombytes(bytes(8 * (offset - size)))
        recent.append(prefix(digest))
        if len(recent) > RECENT_TRIM_AT:
            dropped = len(recent) - RECENT_SEQS
            del recent[:dropped]
            self.recent_base += dropped

    def links_to_head(self, prev_hash: str) -> bool:
        return prev_hash == self.head_hash or (
            self.head_links is not None and prev_hash in self.head_links
        )

    def move_head(self, seq: int, claimed: str, recomputed: str) -> None:
        """`seq` is the new head; an edited one (recomputed != claimed) may be linked to by
        either hash: one edit, of the payload or of the hash itself, is one finding."""
        self.head_seq = seq
        self.head_hash = claimed
        self.head_links = None if recomputed == claimed else (recomputed,)

    def add_gap(self, gap: Gap) -> None:
        if self.gaps is None:
            self.gaps = []
        self.gaps.append(gap)

    def gap_holding(self, seq: int) -> Gap | None:
        gaps = self.gaps
        if not gaps:
            return None
        index = bisect_right(gaps, seq, key=lambda gap: gap.first) - 1
        if index >= 0 and gaps[index].holds(seq):
            return gaps[index]
        return None

    def seen(self, seq: int) -> bool:
        """Whether a record at `seq` was accepted (in order, after a gap, or late into one)."""
        if seq > self.head_seq:
            return False
        gap = self.gap_holding(seq)
        if gap is not None:
            return gap.arrived(seq)
        return seq >= self.first_seq

    def known(self, seq: int) -> int | None:
        """The hash prefix of the record accepted at `seq`, if it is still kept."""
        if not self.seen(seq):
            return None
        recent = self.recent
        if recent is None:
            return prefix(self.head_hash) if seq == self.head_seq else None
        offset = seq - self.recent_base
        if 0 <= offset < len(recent):
            return recent[offset]
        after = self.gap_holding(seq + 1)
        if after is not None and after.first == seq + 1:
            return after.before  # the record just before a gap
        holding = self.gap_holding(seq)
        return None if holding is None else holding.prefix_at_end(seq)

    def arrived_late(self, seq: int, digest: str) -> None:
        gap = self.gap_holding(seq)
        if gap is not None:
            gap.add_late(seq, prefix(digest))
        self.remember(seq, digest)
