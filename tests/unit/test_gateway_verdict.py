"""The gateway's decision (workers/gateway/verdict.py): each reason, which one wins, retry-after
arithmetic, fallbacks with and without caching allowed, data classes, staleness and the failure
modes; decisions are the most restrictive reason's, whatever order Redis returned hashes in."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.types import from_epoch_ms
from tests.support.policy_files import ALPHA_SOLVER_SEEDS
from workers.gateway.verdict import (
    Call,
    Decision,
    FailureMode,
    FetchedState,
    Hash,
    ReasonKind,
    Source,
    budget_applies,
    decide,
    most_restrictive,
    unavailable,
)
from workers.kernels.data_rules import data_class_verdict
from workers.policies.classification import load_classification_policy
from workers.policies.vendor_registry import load_vendor_registry

ROOT = Path(__file__).resolve().parents[2]
HANDLING = load_classification_policy(ALPHA_SOLVER_SEEDS / "data_classification.yaml").data_handling
REGISTRY = load_vendor_registry(ROOT / "examples" / "policies" / "vendors.yaml").groups
NOW = 1_700_000_000_000
CALL = Call("openai", "chat", (("team", "research"),))


def at(ms: int) -> str:
    return from_epoch_ms(ms).isoformat()


def breaker(
    state: str, *, retry_at: int | None = None, fallback: str = "", version: str = "1"
) -> Hash:
    return {
        "state": state,
        "retry_at": "" if retry_at is None else at(retry_at),
        "reason": "failure_rate 0.6 >= 0.5",
        "fallback_action": fallback,
        "policy_id": "cb.vendor.default",
        "policy_version": version,
    }


def budget(
    action: str = "allow",
    *,
    decided_by: str = "",
    requests: str = "",
    tokens: str = "",
    reset_at: int | None = None,
    remaining: str = "",
    version: str = "2",
) -> Hash:
    return {
        "budget_id": "bud",
        "action": action,
        "decided_by": decided_by,
        "remaining_usd": remaining,
        "rate_limit_reset_at": "" if reset_at is None else at(reset_at),
        "requests_remaining": requests,
        "tokens_remaining": tokens,
        "policy_version": version,
        "scope": "{}",
    }


def slo(*firing: str) -> Hash:
    text = "[" + ",".join(f'"{f}"' for f in firing) + "]"
    return {"slo_id": "slo.avail", "firing": text, "level": "", "policy_version": "3"}


CHAIN = "dep.openai is down: dep.chat -> dep.planner -> dep.openai"


def dependency(availability: str, *, reason: str = CHAIN, cause: str | None = None) -> Hash:
    """A dependency node's hash as the gateway's script reads it (a node guarding `tool:chat`)."""
    path = '["dep.chat","dep.planner","dep.openai"]' if availability != "available" else "[]"
    return {
        "availability": availability,
        "node": "dep.chat",
        "reason": reason,
        "cause": path if cause is None else cause,
        "policy_version": "4",
    }


def state(
    breakers: Mapping[str, Hash] | None = None,
    budgets: Mapping[str, Hash] | None = None,
    slos: Mapping[str, Hash] | None = None,
    updated_at_ms: int | None = NOW - 40,
    dependencies: Mapping[str, Hash] | None = None,
) -> FetchedState:
    return FetchedState(
        breakers=breakers or {},
        budgets=budgets or {},
        slos=slos or {},
        dependencies=dependencies or {},
        updated_at_ms=updated_at_ms,
    )


# --- breakers ----------------------------------------------------------------------------------


def test_nothing_projected_allows() -> None:
    verdict = decide(CALL, state(), NOW)
    assert verdict.decision is Decision.ALLOW
    assert verdict.reasons == ()
    assert verdict.source is Source.REDIS
    assert verdict.stale_ms == 40


def test_an_open_breaker_denies_until_its_retry_time() -> None:
    verdict = decide(CALL, state({"openai/chat": breaker("open", retry_at=NOW + 1500)}), NOW)
    assert verdict.decision is Decision.DENY
    (reason,) = verdict.reasons
    assert (reason.kind, reason.key, reason.retry_after_ms) == (
        ReasonKind.BREAKER_OPEN,
        "openai/chat",
        1500,
    )
    assert reason.policy_version == "1"
    assert verdict.retry_after_ms == 1500


def test_an_open_breaker_past_its_retry_time_still_denies_with_no_wait() -> None:
    verdict = decide(CALL, state({"openai": breaker("open", retry_at=NOW - 10)}), NOW)
    assert verdict.decision is Decision.DENY
    assert verdict.retry_after_ms == 0


def test_a_forced_open_breaker_denies_without_a_retry_time() -> None:
    verdict = decide(CALL, state({"chat": breaker("forced_open", retry_at=NOW + 5)}), NOW)
    assert verdict.decision is Decision.DENY
    assert verdict.reasons[0].retry_after_ms is None


@pytest.mark.parametrize("name", ["closed", "half_open", "disabled", "metrics_only"])
def test_other_breaker_states_allow(name: str) -> None:
    assert decide(CALL, state({"openai/chat": breaker(name)}), NOW).decision is Decision.ALLOW


# --- fallbacks ---------------------------------------------------------------------------------


def test_the_fallback_is_the_most_specific_denying_breakers() -> None:
    breakers = {
        "openai": breaker("closed", fallback="use_alternate_vendor"),
        "chat": breaker("open", retry_at=NOW + 1, fallback="use_cache"),
    }
    assert decide(CALL, state(breakers), NOW).fallback_action == "use_cache"
    breakers["openai/chat"] = breaker("open", retry_at=NOW + 1, fallback="queue")
    assert decide(CALL, state(breakers), NOW).fallback_action == "queue"


def test_an_allowed_call_still_carries_the_breakers_fallback() -> None:
    verdict = decide(CALL, state({"openai": breaker("closed", fallback="use_cache")}), NOW)
    assert verdict.allowed
    assert verdict.fallback_action == "use_cache"


def test_a_class_that_may_not_be_cached_replaces_use_cache() -> None:
    breakers = {"openai/chat": breaker("open", retry_at=NOW + 1, fallback="use_cache")}
    public = data_class_verdict(HANDLING, REGISTRY, "openai", ["public"])
    confidential = data_class_verdict(HANDLING, REGISTRY, "anthropic", ["confidential"])
    assert decide(CALL, state(breakers), NOW, data=public).fallback_action == "use_cache"
    verdict = decide(CALL, state(breakers), NOW, data=confidential)
    assert verdict.fallback_action == "return_error"
    assert verdict.encryption_required
    assert "need_to_know" in verdict.restrictions
    assert verdict.retention_days == 1095


# --- budgets and rate limits -------------------------------------------------------------------


def test_a_halted_budget_denies_and_a_throttled_one_throttles() -> None:
    halted = decide(CALL, state(budgets={"bud.a": budget("halt", decided_by="hard_limit")}), NOW)
    assert halted.decision is Decision.DENY
    assert halted.reasons[0].kind is ReasonKind.BUDGET_HALT
    assert halted.reasons[0].key == "bud.a"
    throttled = decide(CALL, state(budgets={"bud.a": budget("throttle", decided_by="x:80")}), NOW)
    assert throttled.decision is Decision.THROTTLE
    assert throttled.reasons[0].kind is ReasonKind.BUDGET_THROTTLE


@pytest.mark.parametrize("exhausted", [{"requests": "0"}, {"tokens": "0"}])
def test_an_exhausted_rate_limit_throttles_until_the_reset(exhausted: dict[str, str]) -> None:
    fields = budget("throttle", decided_by="rate_limit:requests", reset_at=NOW + 700, **exhausted)
    verdict = decide(CALL, state(budgets={"bud.rl": fields}), NOW)
    assert verdict.decision is Decision.THROTTLE
    assert verdict.retry_after_ms == 700
    assert [r.kind for r in verdict.reasons] == [ReasonKind.RATE_LIMIT]


def test_a_rate_limit_whose_reset_has_passed_allows() -> None:
    fields = budget("throttle", decided_by="rate_limit:tokens", tokens="0", reset_at=NOW)
    assert decide(CALL, state(budgets={"bud.rl": fields}), NOW).decision is Decision.ALLOW


def test_remaining_capacity_does_not_throttle() -> None:
    fields = budget(requests="3", tokens="100", reset_at=NOW + 700)
    assert decide(CALL, state(budgets={"bud.rl": fields}), NOW).decision is Decision.ALLOW


def test_an_estimate_above_the_remaining_money_throttles() -> None:
    budgets = {"bud.a": budget(remaining="1.50")}
    below = decide(CALL, state(budgets=budgets), NOW, estimated_cost_usd=Decimal("1.50"))
    above = decide(CALL, state(budgets=budgets), NOW, estimated_cost_usd=Decimal("1.51"))
    assert below.decision is Decision.ALLOW
    assert above.decision is Decision.THROTTLE
    assert "1.51" in above.reasons[0].message


@pytest.mark.parametrize(
    ("scope", "applies"),
    [
        ("{}", True),
        ('{"team":"research"}', True),
        ('{"team":"research","vendor":"openai"}', True),
        ('{"team":"res*","vendor":"open?i"}', True),
        ('{"team":"search"}', False),
        ('{"team":"Research"}', False),
        ('{"user":"ana"}', False),
        ("not json", False),
    ],
)
def test_a_budget_applies_when_its_scope_matches_the_call(scope: str, applies: bool) -> None:
    assert budget_applies(scope, CALL.attributes) is applies


# --- SLOs and data classes ---------------------------------------------------------------------


def test_a_firing_slo_is_reported_without_changing_the_decision_by_default() -> None:
    slos = {"slo:slo.avail/openai": slo("page-1h"), "slo:slo.avail/chat": slo()}
    verdict = decide(CALL, state(slos=slos), NOW)
    assert verdict.decision is Decision.ALLOW
    assert [(r.kind, r.key) for r in verdict.reasons] == [
        (ReasonKind.SLO_DEGRADED, "slo:slo.avail/openai")
    ]
    assert decide(CALL, state(slos=slos), NOW, slo_throttles=True).decision is Decision.THROTTLE


def test_phi_to_a_vendor_outside_hipaa_compliant_is_denied() -> None:
    denied = data_class_verdict(HANDLING, REGISTRY, "openai", ["phi"])
    verdict = decide(CALL, state(), NOW, data=denied)
    assert verdict.decision is Decision.DENY
    assert [(r.kind, r.key) for r in verdict.reasons] == [(ReasonKind.DATA_CLASS, "class.phi")]
    allowed = data_class_verdict(HANDLING, REGISTRY, "azure-openai", ["phi"])
    assert decide(CALL, state(), NOW, data=allowed).decision is Decision.ALLOW


def test_an_unknown_data_class_is_denied() -> None:
    verdict = decide(CALL, state(), NOW, data=data_class_verdict(HANDLING, REGISTRY, "x", ["pi"]))
    assert verdict.decision is Decision.DENY
    assert "unknown data class" in verdict.reasons[0].message


# --- dependencies ------------------------------------------------------------------------------


def test_a_call_reads_the_dependency_nodes_of_its_vendor_and_its_tool() -> None:
    assert CALL.dependency_subjects == ("vendor:openai", "tool:chat")


def test_an_unavailable_dependency_denies_and_names_the_cause_chain() -> None:
    verdict = decide(CALL, state(dependencies={"tool:chat": dependency("unavailable")}), NOW)
    assert verdict.decision is Decision.DENY
    (reason,) = verdict.reasons
    assert (reason.kind, reason.key, reason.decision) == (
        ReasonKind.DEPENDENCY_UNAVAILABLE,
        "tool:chat",
        Decision.DENY,
    )
    assert reason.message == f"dependency tool:chat (dep.chat) is unavailable: {CHAIN}"
    assert reason.retry_after_ms is None  # the cascade does not know when the chain recovers
    assert verdict.retry_after_ms is None
    assert verdict.policy_versions == ("4",)


def test_without_a_reason_the_message_falls_back_to_the_cause_path() -> None:
    fields = dependency("unavailable", reason="")
    (reason,) = decide(CALL, state(dependencies={"vendor:openai": fields}), NOW).reasons
    assert reason.message.endswith(": dep.chat -> dep.planner -> dep.openai")
    bare = dependency("unavailable", reason="", cause="")
    (reason,) = decide(CALL, state(dependencies={"vendor:openai": bare}), NOW).reasons
    assert reason.message.endswith(": no reason recorded")


def test_a_degraded_dependency_allows_and_is_listed() -> None:
    verdict = decide(CALL, state(dependencies={"tool:chat": dependency("degraded")}), NOW)
    assert verdict.decision is Decision.ALLOW
    assert [(r.kind, r.key, r.decision) for r in verdict.reasons] == [
        (ReasonKind.DEPENDENCY_DEGRADED, "tool:chat", Decision.ALLOW)
    ]
    assert CHAIN in verdict.reasons[0].message
    # Informational whatever slo_throttles says: that setting is the SLOs'.
    assert decide(
        CALL, state(dependencies={"tool:chat": dependency("degraded")}), NOW, slo_throttles=True
    ).allowed


@pytest.mark.parametrize("availability", ["available", "", "rebooting"])
def test_an_available_or_unknown_dependency_says_nothing(availability: str) -> None:
    verdict = decide(CALL, state(dependencies={"tool:chat": dependency(availability)}), NOW)
    assert (verdict.decision, verdict.reasons) == (Decision.ALLOW, ())


def test_a_deny_from_a_dependency_alone_keeps_the_breakers_fallback_rule() -> None:
    down = {"vendor:openai": dependency("unavailable")}
    closed = {"openai": breaker("closed", fallback="use_alternate_vendor")}
    assert decide(CALL, state(closed, dependencies=down), NOW).fallback_action == (
        "use_alternate_vendor"
    )
    assert decide(CALL, state(dependencies=down), NOW).fallback_action is None


def test_a_dependency_deny_outranks_throttles_and_lists_after_the_breakers() -> None:
    verdict = decide(
        CALL,
        state(
            {"openai": breaker("open", retry_at=NOW + 9, version="7")},
            {"bud.b": budget("throttle", decided_by="threshold:80")},
            {"slo:slo.avail/openai": slo("ticket-6h")},
            dependencies={
                "tool:chat": dependency("degraded"),
                "vendor:openai": dependency("unavailable"),
            },
        ),
        NOW,
    )
    assert verdict.decision is Decision.DENY
    assert [(r.kind, r.key) for r in verdict.reasons] == [
        (ReasonKind.BREAKER_OPEN, "openai"),
        (ReasonKind.DEPENDENCY_UNAVAILABLE, "vendor:openai"),
        (ReasonKind.BUDGET_THROTTLE, "bud.b"),
        (ReasonKind.SLO_DEGRADED, "slo:slo.avail/openai"),
        (ReasonKind.DEPENDENCY_DEGRADED, "tool:chat"),
    ]
    assert verdict.retry_after_ms == 9  # the breaker's: the dependency names no wait
    only_throttled = state(
        budgets={"bud.b": budget("throttle", decided_by="threshold:80")},
        dependencies={"tool:chat": dependency("degraded")},
    )
    assert decide(CALL, only_throttled, NOW).decision is Decision.THROTTLE
    halted = state(
        budgets={"bud.a": budget("halt", decided_by="hard_limit")},
        dependencies={"tool:chat": dependency("unavailable")},
    )
    assert [r.kind for r in decide(CALL, halted, NOW).reasons] == [
        ReasonKind.DEPENDENCY_UNAVAILABLE,
        ReasonKind.BUDGET_HALT,
    ]


def test_fail_open_keeps_a_last_known_unavailable_dependency() -> None:
    known = state(dependencies={"tool:chat": dependency("unavailable")})
    verdict = unavailable(CALL, known, NOW, FailureMode.FAIL_OPEN, "down")
    assert verdict.decision is Decision.DENY
    assert [r.kind for r in verdict.reasons] == [
        ReasonKind.REDIS_UNAVAILABLE,
        ReasonKind.DEPENDENCY_UNAVAILABLE,
    ]


# --- precedence, versions, staleness -----------------------------------------------------------


def test_every_reason_is_listed_in_a_fixed_order_and_deny_wins() -> None:
    verdict = decide(
        CALL,
        state(
            {"openai": breaker("open", retry_at=NOW + 9, version="7")},
            {
                "bud.b": budget("throttle", decided_by="threshold:80"),
                "bud.a": budget("halt", decided_by="hard_limit"),
            },
            {"slo:slo.avail/openai": slo("ticket-6h")},
        ),
        NOW,
        data=data_class_verdict(HANDLING, REGISTRY, "openai", ["phi"]),
    )
    assert verdict.decision is Decision.DENY
    assert [r.kind for r in verdict.reasons] == [
        ReasonKind.DATA_CLASS,
        ReasonKind.BREAKER_OPEN,
        ReasonKind.BUDGET_HALT,
        ReasonKind.BUDGET_THROTTLE,
        ReasonKind.SLO_DEGRADED,
    ]
    assert verdict.policy_versions == ("2", "3", "7")
    assert verdict.retry_after_ms == 9  # the only denying reason that names a wait


def test_staleness_is_unknown_without_meta_and_never_negative() -> None:
    assert decide(CALL, state(updated_at_ms=None), NOW).stale_ms is None
    assert decide(CALL, state(updated_at_ms=NOW + 5), NOW).stale_ms == 0


# --- Redis unavailable -------------------------------------------------------------------------


def test_fail_open_without_known_state_allows_and_says_why() -> None:
    verdict = unavailable(CALL, None, NOW, FailureMode.FAIL_OPEN, "ConnectionError: refused")
    assert verdict.decision is Decision.ALLOW
    assert verdict.source is Source.NONE
    assert [r.kind for r in verdict.reasons] == [ReasonKind.REDIS_UNAVAILABLE]
    assert verdict.stale_ms is None


def test_fail_closed_denies() -> None:
    verdict = unavailable(CALL, None, NOW, FailureMode.FAIL_CLOSED, "TimeoutError")
    assert verdict.decision is Decision.DENY
    assert "fail_closed" in verdict.reasons[0].message


def test_fail_open_keeps_the_last_known_reasons_and_their_age() -> None:
    known = state({"openai/chat": breaker("open", retry_at=NOW + 100)}, updated_at_ms=NOW - 5000)
    verdict = unavailable(CALL, known, NOW, FailureMode.FAIL_OPEN, "down")
    assert verdict.decision is Decision.DENY
    assert verdict.source is Source.LAST_KNOWN
    assert verdict.stale_ms == 5000
    assert [r.kind for r in verdict.reasons] == [
        ReasonKind.REDIS_UNAVAILABLE,
        ReasonKind.BREAKER_OPEN,
    ]


def test_data_rules_hold_when_redis_is_down() -> None:
    denied = data_class_verdict(HANDLING, REGISTRY, "openai", ["phi"])
    verdict = unavailable(CALL, None, NOW, FailureMode.FAIL_OPEN, "down", data=denied)
    assert verdict.decision is Decision.DENY


# --- properties --------------------------------------------------------------------------------

BREAKER_STATES = st.sampled_from(["closed", "open", "half_open", "forced_open", "disabled"])
BUDGETS = st.builds(
    lambda action, by, requests, reset: budget(
        action, decided_by=by, requests=requests, reset_at=NOW + reset
    ),
    st.sampled_from(["allow", "throttle", "halt"]),
    st.sampled_from(["", "threshold:80", "rate_limit:requests", "hard_limit"]),
    st.sampled_from(["", "0", "5"]),
    st.integers(-1000, 1000),
)
SLOS = st.builds(lambda firing: slo(*firing), st.lists(st.sampled_from(["page", "ticket"])))
DEPENDENCIES = st.builds(dependency, st.sampled_from(["available", "degraded", "unavailable"]))


@given(
    breakers=st.dictionaries(
        st.sampled_from(CALL.breaker_keys), st.builds(breaker, BREAKER_STATES)
    ),
    budgets=st.dictionaries(st.sampled_from(["b1", "b2", "b3"]), BUDGETS),
    slos=st.dictionaries(st.sampled_from(["s1", "s2"]), SLOS),
    dependencies=st.dictionaries(st.sampled_from(CALL.dependency_subjects), DEPENDENCIES),
    classes=st.lists(st.sampled_from(["public", "pii", "phi", "internal"]), max_size=2),
    throttles=st.booleans(),
    data=st.data(),
)
def test_the_decision_is_the_most_restrictive_reason_whatever_the_order(
    breakers: dict[str, Hash],
    budgets: dict[str, Hash],
    slos: dict[str, Hash],
    dependencies: dict[str, Hash],
    classes: list[str],
    throttles: bool,
    data: st.DataObject,
) -> None:
    rules = data_class_verdict(HANDLING, REGISTRY, "openai", classes)
    fetched = state(breakers, budgets, slos, dependencies=dependencies)
    verdict = decide(CALL, fetched, NOW, data=rules, slo_throttles=throttles)
    assert verdict.decision is most_restrictive(r.decision for r in verdict.reasons)
    assert list(verdict.reasons) == sorted(verdict.reasons, key=lambda r: r.order)
    unavailable_nodes = [h for h in dependencies.values() if h["availability"] == "unavailable"]
    if unavailable_nodes:
        assert verdict.decision is Decision.DENY
    shuffled = state(
        dict(data.draw(st.permutations(list(breakers.items())))),
        dict(data.draw(st.permutations(list(budgets.items())))),
        dict(data.draw(st.permutations(list(slos.items())))),
        dependencies=dict(data.draw(st.permutations(list(dependencies.items())))),
    )
    assert decide(CALL, shuffled, NOW, data=rules, slo_throttles=throttles) == verdict


def test_the_gateway_imports_without_faust_or_aiokafka() -> None:
    code = (
        "import sys, workers.gateway, workers.gateway.report; "
        "loaded = [m for m in ('faust', 'aiokafka') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_report_key_is_the_publishers() -> None:
    from topics.keys import input_key
    from workers.gateway.report import report

    built = report("openai", "chat", status="success", duration_ms=3, team="research")
    assert built.key == input_key(built.event)
    assert built.topic == "guardstream.tool-invocations"


def test_a_report_is_validated_like_guardstream_publish() -> None:
    from topics.errors import InvalidEventError
    from topics.publish import parse_event
    from workers.gateway.report import report

    fields = {"status": "maybe", "duration_ms": -1}
    with pytest.raises(InvalidEventError) as ours:
        report("openai", "chat", event_id="e1", ts=from_epoch_ms(NOW), **fields)  # type: ignore[arg-type]
    line = {"event_id": "e1", "ts": at(NOW), "vendor": "openai", "tool": "chat", **fields}
    with pytest.raises(InvalidEventError) as theirs:
        parse_event(line, None)
    assert str(ours.value) == str(theirs.value)
