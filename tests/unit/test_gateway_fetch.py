"""The gateway's fetch plan and reply (workers.gateway.script) and the cache's invalidation
(workers.gateway.cache), without Redis: a call reads its vendor's and tool's dependency hashes
by name, so they are keys its cache entry read, and a change to one evicts it."""

from __future__ import annotations

import orjson
import pytest

from workers.gateway.cache import StateCache
from workers.gateway.core import GatewayCore, GatewaySettings
from workers.gateway.script import (
    DEPENDENCY_FIELDS,
    FETCH_SHA,
    ProjectionMissing,
    parse_reply,
    plan_fetch,
)
from workers.gateway.verdict import Call
from workers.projection.layout import RedisLayout, Surface

LAYOUT = RedisLayout.for_topic_prefix("guardstream.")
CALL = Call("openai", "chat", (("team", "research"),))
TOOL_NODE = LAYOUT.state(Surface.DEPENDENCY, "tool:chat")
VENDOR_NODE = LAYOUT.state(Surface.DEPENDENCY, "vendor:openai")


def reply(tool_node: dict[str, str] | bool) -> bytes:
    """What the script returns for CALL: no breakers, no budgets, the vendor's node absent
    (cjson writes the empty arrays as objects)."""
    return orjson.dumps(["1700000000000", [False] * 3, {}, {}, [False, tool_node]])


def test_the_plan_reads_the_vendor_and_tool_dependency_hashes_after_the_breakers() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    assert plan.args == (3, 0, 2)
    assert plan.keys[4:6] == (VENDOR_NODE, TOOL_NODE)
    assert plan.hash_keys[-2:] == (VENDOR_NODE, TOOL_NODE)


def test_a_reply_keeps_the_existing_nodes_and_reads_every_node_key() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    node = dict(
        zip(
            DEPENDENCY_FIELDS,
            ["unavailable", "dep.chat", "dep.openai is down", '["dep.chat"]', "v"],
            strict=True,
        )
    )
    fetched = parse_reply(LAYOUT, CALL, plan, reply(node))
    assert fetched.state.dependencies == {
        "tool:chat": {
            "availability": "unavailable",
            "node": "dep.chat",
            "reason": "dep.openai is down",
            "cause": '["dep.chat"]',
            "policy_version": "v",
        }
    }
    assert {VENDOR_NODE, TOOL_NODE} <= fetched.read_keys  # the absent one too: its creation counts


def test_a_change_to_a_dependency_hash_evicts_the_entries_that_read_it() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    cache = StateCache(LAYOUT.state(Surface.BUDGET, ""))
    cache.subscribed(True)
    fetched = parse_reply(LAYOUT, CALL, plan, reply(False))
    assert cache.store(CALL, fetched, cache.begin(), now_ms=0)
    cache.changed(LAYOUT.state(Surface.DEPENDENCY, "tool:embed"))  # another tool's node
    assert cache.get(CALL, now_ms=1) is not None
    cache.changed(VENDOR_NODE)  # a node created for the call's vendor
    assert cache.get(CALL, now_ms=1) is None


def test_a_call_signature_is_planned_once() -> None:
    core = GatewayCore(GatewaySettings(topic_prefix="p.", watched_slos=("slo.availability",)))
    call = Call("openai", "chat", (("team", "research"),))
    first = core.plan(call)
    assert core.plan(Call("openai", "chat", (("team", "research"),))) is first
    assert first == plan_fetch(core.layout, call, ("slo.availability",))
    assert core.plan(Call("openai", "chat", (("team", "search"),))) is not first


def test_a_plan_carries_its_evalsha_encoded_as_redis_reads_it() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    arguments = ["EVALSHA", FETCH_SHA, str(len(plan.keys)), *plan.keys, *map(str, plan.args)]
    expected = f"*{len(arguments)}\r\n" + "".join(
        f"${len(a.encode())}\r\n{a}\r\n" for a in arguments
    )
    assert plan.command == expected.encode()


def test_a_reply_without_the_meta_record_is_a_missing_projection() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    with pytest.raises(ProjectionMissing):
        parse_reply(LAYOUT, CALL, plan, orjson.dumps(["", [False] * 3, {}, {}, [False, False]]))
