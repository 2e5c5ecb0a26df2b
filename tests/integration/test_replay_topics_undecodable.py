"""`replay --source topics` over a record batch it cannot decode (issue 11 §5, DESIGN §10).

The worker dead-letters an undecodable batch's offset range and moves on
(`batching.undecodable`); replay must read the same topic contents the same way, or it stops
on the batch the worker got past, and the range it was asked to review cannot be replayed at
all. A librdkafka producer writes an lz4 batch for real; replay then reads the input topics
in-process (`read_range`, what the CLI runs) on a "machine" without the codec library.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import codec as aiokafka_codec

from schemas.dead_letter import DeadLetter, DeadLetterKind
from schemas.events import INPUT_EVENT_TYPES
from schemas.types import epoch_ms
from tests.e2e.test_breakers import POLICY
from tests.e2e.test_third_party_producers import invocations, produce_librdkafka
from topics.admin import TopicAdmin
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from workers.batching.records import RawRecord
from workers.batching.undecodable import UndecodableBatch, UndecodableRecord
from workers.ingest.stage import IngestStage
from workers.policies.policy_set import load_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.topics import merged_batches, read_range, replay_records
from workers.settings import Mode

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

MISSING_LZ4 = "UnsupportedCodecError: Libraries for lz4 compression codec not found"
LZ4_EVENTS = 10  # offsets 0-9: the undecodable batch (or batches)
PLAIN_EVENTS = 5  # offsets 10-14: enough failures to open the "plain" breaker


def new_stage(catalog: TopicCatalog) -> IngestStage:
    """The ingest stage as `replay --source topics` builds it."""
    models = {catalog.name(topic): INPUT_EVENT_TYPES[str(topic)] for topic in INPUT_TOPICS}
    return IngestStage(models, dedup_horizon_ms=60_000, dedup_max_ids=1_000)


def dead_letters(catalog: TopicCatalog, records: list[RawRecord]) -> list[DeadLetter]:
    stage = new_stage(catalog)
    return [
        rejected.dead_letter
        for batch in merged_batches(records)
        for rejected in stage.process(batch).rejected
    ]


def replayed(
    catalog: TopicCatalog, records: list[RawRecord], policy_dir: Path
) -> list[dict[str, Any]]:
    pipeline = PipelineReplay(load_policies(policy_dir, Mode.DEVELOPMENT), catalog)
    return [d.to_json() for d in replay_records(records, new_stage(catalog), pipeline)]


async def test_replay_dead_letters_an_undecodable_batch_like_the_worker_and_moves_on(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = TopicCatalog(prefix=topic_prefix, input_partitions=1)  # null keys: partition 0
    async with TopicAdmin({"bootstrap_servers": bootstrap_servers}) as admin:
        await admin.ensure([catalog.spec(topic) for topic in INPUT_TOPICS])
    topic = catalog.name(TopicName.TOOL_INVOCATIONS)
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "breakers.yaml").write_text(POLICY)

    from_ms = int(time.time() * 1000) - 1_000
    produce_librdkafka(
        bootstrap_servers, topic, "lz4", invocations("lz4", successes=0, failures=LZ4_EVENTS)
    )
    plain = invocations("plain", successes=0, failures=PLAIN_EVENTS)
    produce_librdkafka(bootstrap_servers, topic, "none", plain)
    to_ms = int(time.time() * 1000) + 1_000
    options = {"bootstrap_servers": bootstrap_servers}

    # With the codec library: every event is read, both breakers open.
    decoded = await read_range(options, catalog, from_ms, to_ms)
    assert len(decoded) == LZ4_EVENTS + PLAIN_EVENTS
    with_library = replayed(catalog, decoded, policy_dir)
    assert {d["key"] for d in with_library} == {"lz4/chat", "plain/chat"}

    # Without it (the reproducer: read_range raised UnsupportedCodecError and replay stopped).
    monkeypatch.setattr(aiokafka_codec, "cramjam", None)
    records = await read_range(options, catalog, from_ms, to_ms)
    placeholders = [r for r in records if isinstance(r, UndecodableRecord)]
    assert placeholders, "the lz4 range is missing from what replay read"
    assert [r.offset for r in records if not isinstance(r, UndecodableRecord)] == list(
        range(LZ4_EVENTS, LZ4_EVENTS + PLAIN_EVENTS)
    )  # the partition carried on past the range

    # Each range becomes the dead letter the worker writes for it (the worker reads the
    # partition from offset 0 too): one per batch, at its last offset, naming what and where.
    letters = dead_letters(catalog, records)
    covered: list[int] = []
    for letter in letters:
        found = re.fullmatch(
            rf"undecodable record batch in {re.escape(topic)}\[0\], offsets (\d+)-(\d+) "
            rf"\((\d+) offsets, codec lz4\): {re.escape(MISSING_LZ4)}",
            letter.error,
        )
        assert found, letter.error
        first, last = int(found[1]), int(found[2])
        assert letter.error_kind is DeadLetterKind.UNDECODABLE
        batch_ms = epoch_ms_of(letter)  # the batch header's time, read without decoding
        assert from_ms <= batch_ms <= to_ms
        batch = UndecodableBatch(topic, 0, first, last, "lz4", MISSING_LZ4, batch_ms)
        assert letter == batch.dead_letter(expected_type="ToolInvocation")
        covered += range(first, last + 1)
    assert sorted(covered) == list(range(LZ4_EVENTS))

    # The decisions are those of the decodable events: the range costs its own events only.
    without_library = replayed(catalog, records, policy_dir)
    assert without_library == [d for d in with_library if d["key"] != "lz4/chat"]


def epoch_ms_of(letter: DeadLetter) -> int:
    assert letter.record_ts is not None
    return epoch_ms(letter.record_ts)
