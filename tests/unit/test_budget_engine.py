"""BudgetEngine: routing to ledgers, alert lifecycle, transitions, control commands, lines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.clock import ClockTick
from schemas.events import CostEvent, ToolInvocation
from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import from_epoch_ms
from tests.support.pipelines import budgets_only
from tests.support.policy_specs import PER_USER_BUDGET
from workers.budgets.engine import BudgetEngine
from workers.budgets.routing import nanos_of, route
from workers.decisions import AlertDecision, ControlDecision, Decision, TransitionDecision
from workers.policies.budgets import BudgetPolicy
from workers.replay.run import Replay

T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z
MIN = 60_000
DAY = 24 * 60 * MIN

SPEC: dict[str, Any] = {
    "budgets": {
        "bud.team.research": {
            "scope": {"team": "research"},
            "period": "daily",
            "limit_usd": 100,
            "hard": True,
            "thresholds": [
                {"percent": 50, "action": "notify"},
                {"percent": 80, "action": "notify"},
                {"percent": 95, "action": "throttle"},
                {"percent": 100, "action": "halt"},
            ],
        },
        "bud.user": PER_USER_BUDGET,
        "bud.priced": {
            "scope": {"vendor": "openai"},
            "period": "daily",
            "limit_usd": 1000,
            "cost_per_unit": {"gpt-4": 0.03},
            "thresholds": [],
        },
    },
    "tripwires": {
        "bud.team.research": {
            "breach_threshold_pct": 12,
            "consecutive_breach_limit": 2,
            "recovery_threshold_pct": 8,
            "check_interval_ms": 15 * MIN,
            "downgrade_parameters": {"FUSION_MODE": "baseline_only"},
        }
    },
}


def engine() -> BudgetEngine:
    document = PolicyDocument.from_spec(PolicyKind.BUDGETS, "t", SPEC)
    return BudgetEngine(BudgetPolicy.from_document(document))


def call(n: int, usd: str, *, team: str = "research", user: str = "ana", ts_ms: int | None = None,
         vendor: str = "anthropic", **extra: Any) -> ToolInvocation:  # fmt: skip
    return ToolInvocation(
        event_id=f"e{n}",
        ts=from_epoch_ms(T0 + n * MIN if ts_ms is None else ts_ms),
        vendor=vendor,
        tool="chat",
        status="success",
        duration_ms=10,
        cost_usd=Decimal(usd),
        team=team,
        user=user,
        **extra,
    )


def run(e: BudgetEngine, events: list[Any]) -> list[Decision]:
    return [d for event in events for d in e.apply(event)]


def alerts(decisions: list[Decision], key: str | None = None) -> list[tuple[str, str, str]]:
    return [
        (d.key, str(d.alert.status), d.alert.labels.get("threshold_percent", d.alert.kind))
        for d in decisions
        if isinstance(d, AlertDecision) and (key is None or d.key == key)
    ]


def test_a_spend_spike_walks_the_team_budget_through_its_thresholds_once_each() -> None:
    e = engine()
    amounts = ["10"] * 9 + ["5", "5", "10"]  # 90, 95, 100, 110 %
    decisions = run(e, [call(n, usd, user=f"u{n}") for n, usd in enumerate(amounts)])
    assert alerts(decisions, "bud.team.research") == [
        ("bud.team.research", "firing", "50"),
        ("bud.team.research", "firing", "80"),
        ("bud.team.research", "firing", "95"),
        ("bud.team.research", "firing", "100"),
    ]
    actions = [
        (d.from_state, d.to_state, d.reason) for d in decisions if isinstance(d, TransitionDecision)
    ]
    assert actions == [("allow", "throttle", "threshold:95"), ("throttle", "halt", "threshold:100")]
    other_team = run(e, [call(50, "500", team="search")])
    assert other_team == []  # no budget of theirs: untouched


def test_rollover_resolves_the_period_s_threshold_alerts_and_the_action() -> None:
    e = engine()
    run(e, [call(n, "20", user=f"u{n}") for n in range(5)])  # 100 %: halted
    decisions = e.apply(ClockTick.at(T0 + DAY))
    assert sorted(a[2] for a in alerts(decisions, "bud.team.research")) == ["100", "50", "80", "95"]
    assert {a[1] for a in alerts(decisions)} == {"resolved"}
    [back] = [d for d in decisions if isinstance(d, TransitionDecision)]
    assert (back.from_state, back.to_state) == ("halt", "allow")


def test_split_budgets_keep_one_state_per_user() -> None:
    e = engine()
    decisions = run(e, [call(0, "30", user="ana"), call(1, "29", user="bob")])
    assert alerts(decisions, "bud.user/ana") == [("bud.user/ana", "firing", "100")]
    assert alerts(decisions, "bud.user/bob") == []
    assert set(e.ledgers) >= {"bud.user/ana", "bud.user/bob"}


def test_calls_without_a_cost_are_priced_by_the_model_s_unit_cost() -> None:
    e = engine()
    e.apply(
        call(0, "0", vendor="openai", team="other", model="gpt-4", tokens_in=1500, tokens_out=500)
    )
    assert e.ledgers["bud.priced"].spent_nanos == 60_000_000  # 2,000 tokens x $0.03 / 1,000


def test_the_tripwire_emits_a_downgrade_command_and_an_alert() -> None:
    e = engine()
    # Plan per 15 minutes: $100 x 15 / 1440 = $1.04; spend $2 in two intervals in a row.
    decisions = run(e, [call(n * 15, "2", user=f"u{n}") for n in range(3)])
    [command] = [d for d in decisions if isinstance(d, ControlDecision)]
    line = command.to_json()
    assert (line["type"], line["kernel"], line["command"]) == ("control", "budget", "downgrade")
    assert line["target"] == "team:research"
    assert line["parameters"] == {"FUSION_MODE": "baseline_only"}
    assert ("bud.team.research", "firing", "budget_tripwire") in alerts(decisions)


def test_lines_carry_budget_id_and_threshold_percent() -> None:
    decisions = run(engine(), [call(0, "60")])
    line = next(d.to_json() for d in decisions if isinstance(d, AlertDecision))
    assert line["kernel"] == "budget"
    assert line["labels"]["budget_id"] == "bud.team.research"
    assert line["labels"]["threshold_percent"] == "50"


def test_replaying_duplicates_changes_nothing() -> None:
    events = [call(n, "7", user=f"u{n}") for n in range(20)]
    once = [orjson.dumps(e.model_dump(mode="json")) for e in events]
    twice = [line for line in once for _ in range(2)]

    def replay(lines: list[bytes]) -> tuple[list[dict[str, Any]], int]:
        r = Replay(budgets_only(engine().policy), dedup_horizon_ms=DAY, dedup_max_ids=1000)
        out = [d.to_json() for d in r.run(enumerate(lines, start=1))]
        return out, r.counts.duplicates

    assert replay(twice) == (replay(once)[0], 20)


def test_routing_yields_one_spend_per_matching_budget_key() -> None:
    policy = engine().policy
    spends = route(policy, call(0, "0", vendor="openai", model="gpt-4", tokens_in=1000))
    assert {(s.key, s.nanos, s.tokens, s.requests) for s in spends} == {
        ("bud.team.research", 0, 1000, 1),
        ("bud.user/ana", 0, 1000, 1),
        ("bud.priced", 30_000_000, 1000, 1),  # priced for the budget that lists gpt-4
    }
    cost = CostEvent(
        event_id="c1", ts=from_epoch_ms(T0), cost_usd=Decimal("1.5"), tokens=7, source="billing",
        team="research",
    )  # fmt: skip
    [spend] = route(policy, cost)
    assert (spend.key, spend.nanos, spend.tokens, spend.requests) == (
        "bud.team.research", 1_500_000_000, 7, 0,
    )  # fmt: skip
    assert route(policy, call(1, "1", team="nobody", user="x")) == []


def test_a_period_closes_with_its_final_total_and_later_spend_is_recorded_late() -> None:
    e = engine()
    e.apply(call(0, "12"))
    # The next day, past the development grace (1 min): the first day closes.
    closing = e.apply(call(1, "3", ts_ms=T0 + DAY + 2 * MIN))
    records = [d.to_json() for d in closing if d.type.value == "record"]
    team = next(r for r in records if r["key"] == "bud.team.research")
    assert (team["record"], team["period"], team["spent_usd"], team["requests"]) == (
        "period_closed", "2026-11-18", "12", 1,
    )  # fmt: skip
    late = [d.to_json() for d in e.apply(call(2, "5", ts_ms=T0 + MIN))]
    assert {(r["record"], r["spent_usd"]) for r in late if r["type"] == "record"} == {
        ("late_spend", "5")
    }


def test_amounts_finer_than_a_nano_dollar_round_half_even() -> None:
    assert nanos_of(Decimal("0.0042")) == 4_200_000
    assert nanos_of(Decimal("0.0000000015")) == 2
    assert nanos_of(Decimal("0.0000000025")) == 2
    assert nanos_of(Decimal(0)) == 0


class EveryLedgerOnEveryTick(BudgetEngine):
    """The reference: a tick advances every ledger, in creation order."""

    def advance(self, ts_ms: int, event_id: str) -> list[Decision]:
        decisions: list[Decision] = []
        for ledger in self.ledgers.values():
            decisions += self._decide(ledger, ledger.advance(ts_ms), event_id)
        return decisions


_STREAM = st.lists(
    st.one_of(
        st.tuples(
            st.just("spend"),
            st.integers(0, 3 * DAY),
            st.sampled_from(["ana", "bob", "cy"]),
            st.sampled_from(["0.5", "4", "20"]),
        ),
        st.tuples(st.just("tick"), st.integers(0, 3 * DAY), st.just(""), st.just("")),
    ),
    max_size=40,
)


def _decide_stream(e: BudgetEngine, stream: list[tuple[str, int, str, str]]) -> list[Any]:
    out: list[dict[str, Any]] = []
    for n, (kind, dt, user, usd) in enumerate(stream):
        event: Any = (
            ClockTick.at(T0 + dt) if kind == "tick" else call(n, usd, user=user, ts_ms=T0 + dt)
        )
        out += [d.to_json() for d in e.apply(event)]
    return out


@settings(max_examples=80, deadline=None)
@given(_STREAM)
def test_advancing_only_due_ledgers_decides_exactly_as_advancing_all(
    stream: list[tuple[str, int, str, str]],
) -> None:
    document = PolicyDocument.from_spec(PolicyKind.BUDGETS, "t", SPEC)
    policy = BudgetPolicy.from_document(document)
    reference = _decide_stream(EveryLedgerOnEveryTick(policy), stream)
    assert _decide_stream(BudgetEngine(policy), stream) == reference


ROLLING_SPEC: dict[str, Any] = {
    "budgets": {
        "bud.user.rolling": {
            "scope": {"team": "research", "user": "*"},
            "split_by": ["user"],
            "period": "rolling",
            "rolling_ms": 6 * 3_600_000,
            "limit_usd": 30,
            "hard": True,
            "burst_allowance": 1.2,
            "rate_limits": {"requests_per_minute": 3},
            "thresholds": [
                {"percent": 50, "action": "notify"},
                {"percent": 100, "action": "throttle"},
            ],
        },
    },
}


# Over the limit (thresholds, then halted), then a tick a minute while the spend's 6-minute
# bucket leaves the 6 h window (at 6 h 06 min): halted until exactly then.
_ROLLING_EXAMPLE = [
    ("spend", 0, "ana", "20"),
    ("spend", MIN, "ana", "20"),
    *(("tick", minute * MIN, "", "") for minute in range(355, 375)),
]


@settings(max_examples=80, deadline=None)
@given(_STREAM)
@example(_ROLLING_EXAMPLE)
def test_rolling_ledgers_are_due_only_when_spend_leaves_their_window(
    stream: list[tuple[str, int, str, str]],
) -> None:
    """A rolling budget's ledger is advanced at a tick only when a bucket holding spend leaves
    its window (or a rate limit's capacity returns): deciding exactly as advancing it at every
    tick, thresholds re-arming and actions relaxing included."""

    document = PolicyDocument.from_spec(PolicyKind.BUDGETS, "t", ROLLING_SPEC)
    policy = BudgetPolicy.from_document(document)
    reference = _decide_stream(EveryLedgerOnEveryTick(policy), stream)
    assert _decide_stream(BudgetEngine(policy), stream) == reference
