"""Routing alerts to receivers by label (workers.alerting.routes) and what each receiver kind
is sent (workers.alerting.payloads): Alertmanager's route semantics (first match, `continue`,
catch-all), matchers on `kind`, `severity`, any identifying label; the routes file's errors
name the field; payload shapes of the webhook (Alertmanager v4), Slack and PagerDuty v2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.types import Severity, from_epoch_ms
from workers.alerting.payloads import pagerduty_event, slack_message, webhook_payload
from workers.alerting.postable import Delivery, Links
from workers.alerting.routes import ReceiverType, Router, RoutesSpec, load_routes
from workers.errors import ConfigError

T0 = 1_795_000_000_000
VERSION = "c" * 64
RECEIVERS = {
    "pager": {"type": "pagerduty", "routing_key_env": "PD_KEY"},
    "chat": {"type": "slack", "url_env": "SLACK_URL"},
    "archive": {"type": "webhook", "url": "http://archive/alerts"},
}


def alert(kind: str, severity: Severity, **labels: str) -> Alert:
    return firing_alert(
        kind, labels, severity=severity, summary=f"{kind} fired", at_ms=T0, policy_version=VERSION
    )


def router(*routes: dict[str, Any]) -> Router:
    return Router(RoutesSpec.model_validate({"receivers": RECEIVERS, "routes": list(routes)}))


def test_the_first_matching_route_takes_the_alert_unless_it_continues() -> None:
    routes = router(
        {"match": {"severity": "page"}, "receiver": "pager", "continue": True},
        {"match_re": {"kind": "budget_.*"}, "receiver": "chat"},
        {"receiver": "archive"},
    )
    page = alert("slo_burn_rate", Severity.PAGE, slo="s")
    budget = alert("budget_threshold", Severity.WARNING, team="research")
    breaker = alert("breaker_open", Severity.CRITICAL, vendor="openai")
    assert routes.receivers_for(page) == ["pager", "archive"]
    assert routes.receivers_for(budget) == ["chat"]
    assert routes.receivers_for(breaker) == ["archive"]


def test_matchers_read_identifying_labels_and_regexes_match_whole_values() -> None:
    routes = router(
        {"match": {"team": "research"}, "match_re": {"vendor": "open.*"}, "receiver": "chat"},
    )
    assert routes.receivers_for(alert("k", Severity.INFO, team="research", vendor="openai"))
    assert not routes.receivers_for(alert("k", Severity.INFO, team="search", vendor="openai"))
    assert not routes.receivers_for(alert("k", Severity.INFO, team="research", vendor="xopenai"))
    assert not routes.receivers_for(alert("k", Severity.INFO))  # a missing label never matches


def test_a_receiver_is_named_once_however_many_routes_match() -> None:
    routes = router(
        {"receiver": "archive", "continue": True},
        {"match": {"severity": "page"}, "receiver": "archive"},
    )
    assert routes.receivers_for(alert("k", Severity.PAGE)) == ["archive"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"receivers": RECEIVERS, "routes": [{"receiver": "nobody"}]}, "no receiver named"),
        (
            {"receivers": RECEIVERS, "routes": [{"receiver": "chat", "match_re": {"a": "("}}]},
            "match_re.a",
        ),
        ({"receivers": {"x": {"type": "slack"}}, "routes": [{"receiver": "x"}]}, "url or url_env"),
        (
            {"receivers": {"x": {"type": "pagerduty"}}, "routes": [{"receiver": "x"}]},
            "routing_key_env",
        ),
        ({"receivers": RECEIVERS, "routes": [{"receiver": "chat", "mach": {}}]}, "mach"),
    ],
)
def test_a_routes_file_with_a_mistake_is_refused_naming_it(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=message):
        load_routes(path)


def test_the_shipped_routes_file_loads() -> None:
    spec = load_routes(Path(__file__).resolve().parents[2] / "configs" / "alert_routes.yaml")
    assert {r.type for r in spec.receivers.values()} == set(ReceiverType)


def test_secrets_come_from_the_environment_only() -> None:
    spec = RoutesSpec.model_validate({"receivers": RECEIVERS, "routes": [{"receiver": "chat"}]})
    assert (
        spec.receivers["chat"].resolved_url({"SLACK_URL": "https://hooks/x"}) == "https://hooks/x"
    )
    with pytest.raises(ConfigError, match="SLACK_URL is not set"):
        spec.receivers["chat"].resolved_url({})
    assert spec.receivers["pager"].routing_key({"PD_KEY": "k"}) == "k"


def resolved(firing: Alert) -> Alert:
    return firing.model_copy(
        update={
            "alert_id": "r",
            "status": AlertStatus.RESOLVED,
            "ends_at": from_epoch_ms(T0 + 60_000),
        }
    )


def test_the_webhook_payload_is_alertmanagers_version_4() -> None:
    a = alert("breaker_open", Severity.CRITICAL, vendor="openai", tool="chat")
    b = alert("breaker_open", Severity.CRITICAL, vendor="mistral", tool="chat")
    payload = webhook_payload(
        "archive", [Delivery(a, a), Delivery(resolved(b), b)], T0, 60_000, Links()
    )
    assert (payload["version"], payload["receiver"], payload["status"]) == (
        "4",
        "archive",
        "firing",
    )
    assert [x["status"] for x in payload["alerts"]] == ["firing", "resolved"]
    assert payload["alerts"][0]["fingerprint"] == a.fingerprint
    assert payload["commonLabels"] == {
        "alertname": "breaker_open",
        "severity": "critical",
        "tool": "chat",
    }


def test_slack_gets_one_line_per_alert() -> None:
    a = alert("breaker_open", Severity.CRITICAL, vendor="openai")
    text = slack_message([Delivery(a, a), Delivery(resolved(a), a)])["text"]
    assert text.splitlines() == [
        ":red_circle: *[FIRING]* `breaker_open` (critical): breaker_open fired",
        ":large_green_circle: *[RESOLVED]* `breaker_open` (critical): breaker_open fired",
    ]


def test_pagerduty_triggers_and_resolves_one_incident_per_fingerprint() -> None:
    a = alert("slo_burn_rate", Severity.PAGE, vendor="openai", tool="chat")
    trigger = pagerduty_event(Delivery(a, a), "key", "guardstream")
    resolve = pagerduty_event(Delivery(resolved(a), a), "key", "guardstream")
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", a.fingerprint)
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["component"] == "openai"
    assert trigger["payload"]["custom_details"]["tool"] == "chat"
    assert resolve == {"routing_key": "key", "event_action": "resolve", "dedup_key": a.fingerprint}
