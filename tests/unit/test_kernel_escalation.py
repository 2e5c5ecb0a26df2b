"""Escalation of unacknowledged incidents (workers.kernels.escalation): once, at the rule's
time after the incident started, unless acknowledged or resolved first; its resolution when
the incident resolves or is acknowledged; the first matching rule decides; escalations never
escalate; and a property: over any sequence of firings, resolutions, acknowledgements and
ticks, the outputs are those of a naive model, and the same inputs give the same outputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.types import Severity, epoch_ms, from_epoch_ms
from workers.kernels.escalation import ESCALATED, Acknowledgement, EscalationBook, EscalationRule

T0 = 1_795_000_000_000
MIN = 60_000
V = "e" * 64
OPEN_CIRCUIT = EscalationRule(
    "circuit_open",
    after_ms=5 * MIN,
    escalate_to=Severity.PAGE,
    notify=("operations", "engineering"),
    kinds=frozenset({"breaker_open"}),
)
SLO_WARNING = EscalationRule(
    "slo_warning",
    after_ms=5 * MIN,
    escalate_to=Severity.CRITICAL,
    severities=frozenset({Severity.WARNING}),
)


def opened(vendor: str, at_ms: int = T0, kind: str = "breaker_open") -> Alert:
    return firing_alert(
        kind,
        {"vendor": vendor, "tool": "chat"},
        severity=Severity.CRITICAL,
        summary=f"{vendor}/chat opened",
        at_ms=at_ms,
        policy_version=V,
    )


def closed(alert: Alert, at_ms: int) -> Alert:
    return alert.model_copy(
        update={
            "alert_id": f"{alert.fingerprint}-{at_ms}-resolved",
            "status": AlertStatus.RESOLVED,
            "ends_at": from_epoch_ms(at_ms),
        }
    )


def test_an_open_circuit_escalates_once_after_five_minutes_to_its_channels() -> None:
    book = EscalationBook([OPEN_CIRCUIT], V)
    incident = opened("openai")
    assert book.observe(incident) == []
    assert book.advance(T0 + 5 * MIN - 1) == []
    [escalation] = book.advance(T0 + 5 * MIN)
    assert (escalation.kind, escalation.severity, escalation.status) == (
        ESCALATED,
        Severity.PAGE,
        AlertStatus.FIRING,
    )
    assert epoch_ms(escalation.starts_at) == T0 + 5 * MIN
    assert escalation.labels["notify"] == "operations,engineering"
    assert escalation.labels["vendor"] == "openai"
    assert escalation.labels["escalated_kind"] == "breaker_open"
    assert escalation.evidence == [incident.alert_id]
    assert book.advance(T0 + 60 * MIN) == []  # once
    [ended] = book.observe(closed(incident, T0 + 7 * MIN))
    assert (ended.fingerprint, ended.status) == (escalation.fingerprint, AlertStatus.RESOLVED)
    assert ended.summary == "escalation ended: breaker_open resolved"


def test_an_acknowledged_incident_does_not_escalate_and_an_escalation_ends_with_its_ack() -> None:
    book = EscalationBook([OPEN_CIRCUIT], V)
    first, second = opened("openai"), opened("mistral")
    book.observe(first)
    book.observe(second)
    assert book.acknowledge(Acknowledgement(first.fingerprint, T0 + MIN, "ana")) == []
    [escalation] = book.advance(T0 + 5 * MIN)
    assert escalation.labels["vendor"] == "mistral"
    [ended] = book.acknowledge(Acknowledgement(second.fingerprint, T0 + 6 * MIN, "bo"))
    assert ended.summary == "escalation ended: acknowledged by bo"
    assert book.acknowledge(Acknowledgement("f" * 32, T0, "x")) == []  # unknown: nothing


def test_a_resolution_before_the_due_time_cancels_it() -> None:
    book = EscalationBook([OPEN_CIRCUIT], V)
    incident = opened("openai")
    book.observe(incident)
    assert book.observe(closed(incident, T0 + MIN)) == []
    assert book.advance(T0 + 10 * MIN) == []
    assert len(book) == 0


def test_the_first_matching_rule_decides_and_escalations_never_escalate() -> None:
    book = EscalationBook([OPEN_CIRCUIT, SLO_WARNING], V)
    warning = firing_alert(
        "slo_burn_rate",
        {"slo": "slo.a", "severity": "ticket"},
        severity=Severity.WARNING,
        summary="burning",
        at_ms=T0,
        policy_version=V,
    )
    book.observe(warning)
    book.observe(opened("openai", kind="budget_threshold"))  # critical, no rule for its kind
    [escalation] = book.advance(T0 + 5 * MIN)
    assert escalation.severity is Severity.CRITICAL
    assert "severity" not in escalation.labels  # the incident's page/ticket label is not carried
    assert book.observe(escalation) == []
    assert book.advance(T0 + 60 * MIN) == []


def test_an_incident_that_started_long_ago_escalates_as_soon_as_it_is_seen_late() -> None:
    book = EscalationBook([OPEN_CIRCUIT], V)
    book.advance(T0 + 30 * MIN)
    [escalation] = book.observe(opened("openai"))
    assert epoch_ms(escalation.starts_at) == T0 + 5 * MIN


# --- property: the book against a naive model ---------------------------------------------

VENDORS = ("a", "b", "c")
Step = tuple[str, int, int]  # (what, vendor index, minutes later)
steps = st.lists(
    st.tuples(
        st.sampled_from(["fire", "resolve", "ack", "tick"]), st.integers(0, 2), st.integers(0, 4)
    ),
    max_size=40,
)


def run(book: EscalationBook, script: list[Step]) -> list[tuple[str, str, int]]:
    """Outputs as (vendor, status, instant)."""
    now, out = T0, []
    firing: dict[str, Alert] = {}
    for what, index, later in script:
        now += later * MIN
        vendor = VENDORS[index]
        if what == "fire" and vendor not in firing:
            firing[vendor] = opened(vendor, now)
            emitted = book.observe(firing[vendor])
        elif what == "resolve" and vendor in firing:
            emitted = book.observe(closed(firing.pop(vendor), now))
        elif what == "ack" and vendor in firing:
            emitted = book.acknowledge(Acknowledgement(firing[vendor].fingerprint, now, "x"))
        else:
            emitted = book.advance(now)
        for alert in emitted:
            at = alert.ends_at if alert.status is AlertStatus.RESOLVED else alert.starts_at
            assert at is not None
            out.append((alert.labels["vendor"], alert.status.value, epoch_ms(at)))
    return out


def naive(script: list[Step]) -> list[tuple[str, str, int]]:
    """The rule spelt out: every step first reaches its instant (incidents firing and
    unacknowledged for 5 minutes by then escalate, in due order), then acts: a firing starts
    an incident, a resolution or an acknowledgement ends its escalation (if any); an
    acknowledged incident never escalates."""
    now, out = T0, []
    state: dict[str, dict[str, int | bool]] = {}  # vendor -> start, acked, escalated
    for what, index, later in script:
        now += later * MIN
        vendor = VENDORS[index]
        due = sorted(  # same due time: in fingerprint order
            (s["start"] + 5 * MIN, opened(v).fingerprint, v)
            for v, s in state.items()
            if not s["acked"] and not s["escalated"] and s["start"] + 5 * MIN <= now
        )
        for at, _, v in due:
            state[v]["escalated"] = True
            out.append((v, "firing", at))
        if what == "fire" and vendor not in state:
            state[vendor] = {"start": now, "acked": False, "escalated": False}
        elif what in ("resolve", "ack") and vendor in state:
            if state[vendor]["escalated"] and not state[vendor]["acked"]:
                out.append((vendor, "resolved", now))
            if what == "resolve":
                del state[vendor]
            else:
                state[vendor]["acked"] = True
    return out


@given(steps)
def test_any_sequence_gives_what_a_naive_model_gives_and_the_same_twice(script: list[Step]) -> None:
    first = run(EscalationBook([OPEN_CIRCUIT], V), script)
    assert first == run(EscalationBook([OPEN_CIRCUIT], V), script)
    assert first == naive(script)
