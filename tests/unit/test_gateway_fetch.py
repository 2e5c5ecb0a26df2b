"""The gateway's fetch plan and reply (workers.gateway.script) and the cache's invalidation
(workers.gateway.cache), without Redis: a call reads its vendor's and tool's dependency hashes
by name, so they are keys its cache entry read, and a change to one evicts it."""

from __future__ import annotations

from typing import Any

from workers.gateway.cache import StateCache
from workers.gateway.core import GatewayCore, GatewaySettings
from workers.gateway.script import BREAKER_FIELDS, DEPENDENCY_FIELDS, parse_reply, plan_fetch
from workers.gateway.verdict import Call
from workers.projection.layout import RedisLayout, Surface

LAYOUT = RedisLayout.for_topic_prefix("guardstream.")
CALL = Call("openai", "chat", (("team", "research"),))
TOOL_NODE = LAYOUT.state(Surface.DEPENDENCY, "tool:chat")
VENDOR_NODE = LAYOUT.state(Surface.DEPENDENCY, "vendor:openai")


def reply(tool_node: list[Any]) -> list[Any]:
    """What the script returns for CALL: no breakers, no budgets, the vendor's node absent."""
    absent_breaker = [None] * len(BREAKER_FIELDS)
    absent_node = [None] * len(DEPENDENCY_FIELDS)
    return [b"1700000000000", [absent_breaker] * 3, [], [], [absent_node, tool_node]]


def test_the_plan_reads_the_vendor_and_tool_dependency_hashes_after_the_breakers() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    assert plan.args == (3, 0, 2)
    assert plan.keys[4:6] == (VENDOR_NODE, TOOL_NODE)
    assert plan.hash_keys[-2:] == (VENDOR_NODE, TOOL_NODE)


def test_a_reply_keeps_the_existing_nodes_and_reads_every_node_key() -> None:
    plan = plan_fetch(LAYOUT, CALL, watched_slos=())
    node = [b"unavailable", b"dep.chat", b"dep.openai is down", b'["dep.chat"]', b"v"]
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
    fetched = parse_reply(LAYOUT, CALL, plan, reply([None] * len(DEPENDENCY_FIELDS)))
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
