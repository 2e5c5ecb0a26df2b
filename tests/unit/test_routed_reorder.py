"""The budget counter's reorder buffer: event-time order under the low watermark."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_budget_engine import engine
from workers.budgets.routing import Spend
from workers.routed.reorder import WatermarkReorder

A, B = ("tool-invocations", 0), ("tool-invocations", 1)


def spend(ts_ms: int, event_id: str) -> Spend:
    config = engine().policy.budgets["bud.team.research"]
    return Spend("bud.team.research", config, ts_ms, 1, 0, 1, event_id, 1)


def test_nothing_is_released_until_every_source_passed_it() -> None:
    buffer = WatermarkReorder[Spend]([A, B])
    buffer.add(A, [spend(10, "a10"), spend(30, "a30")])
    assert buffer.watermark(A, 30) == []  # B has not reported yet
    buffer.add(B, [spend(5, "b5"), spend(20, "b20")])
    released = buffer.watermark(B, 20)
    assert [s.event_id for s in released] == ["b5", "a10"]  # b20: B may send more at 20
    assert buffer.low_watermark_ms == 20
    assert [s.event_id for s in buffer.watermark(B, 40)] == ["b20"]  # A is only at 30
    assert [s.event_id for s in buffer.watermark(A, 50)] == ["a30"]
    assert len(buffer) == 0


def test_watermarks_never_go_back_and_unknown_sources_are_ignored() -> None:
    buffer = WatermarkReorder[Spend]([A])
    buffer.add(A, [spend(10, "x")])
    assert buffer.watermark(A, 10) == []
    assert [s.event_id for s in buffer.watermark(A, 11)] == ["x"]
    assert buffer.watermark(A, 5) == []
    assert buffer.watermark(("latency-events", 0), 99) == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([A, B]), st.integers(0, 1000)), min_size=1, max_size=60),
    st.randoms(use_true_random=False),
)
def test_release_order_does_not_depend_on_how_sources_interleave(
    events: list[tuple[tuple[str, int], int]], rng: object
) -> None:
    by_source = {
        A: sorted(t for s, t in events if s == A),
        B: sorted(t for s, t in events if s == B),
    }

    def run(order: list[tuple[str, int]]) -> list[str]:
        buffer = WatermarkReorder[Spend]([A, B])
        out: list[str] = []
        cursor = {A: 0, B: 0}
        for source in order:
            times = by_source[source]
            if cursor[source] < len(times):
                ts = times[cursor[source]]
                buffer.add(source, [spend(ts, f"{source[1]}-{cursor[source]}")])
                cursor[source] += 1
                out += [s.event_id for s in buffer.watermark(source, ts)]
        out += [s.event_id for s in buffer.watermark(A, 10**9)]
        out += [s.event_id for s in buffer.watermark(B, 10**9)]
        return out

    slots = [A] * len(by_source[A]) + [B] * len(by_source[B])
    first = run(slots)
    shuffled = slots[:]
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert run(shuffled) == first
