"""Alerts as Alertmanager takes them (workers.alerting.postable) and the open incidents the
forwarder keeps (workers.alerting.book): one label set per incident from firing to
resolution, values at resolution in the annotations, valid label names, endsAt rules."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from schemas.alerts import Alert, AlertStatus, firing_alert
from schemas.types import Severity, epoch_ms, from_epoch_ms
from workers.alerting.book import DeliveryBook
from workers.alerting.postable import Delivery, Links, label_name, postable, split_labels

T0 = 1_795_000_000_000
VERSION = "a" * 64
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def burn(severity: Severity, notify: str, burn_rate: str, at_ms: int = T0) -> Alert:
    return firing_alert(
        "slo_burn_rate",
        {"slo": "slo.availability", "slo_key": "openai/chat", "severity": notify},
        severity=severity,
        summary=f"SLO slo.availability burning at {burn_rate}x",
        at_ms=at_ms,
        policy_version=VERSION,
        value=float(burn_rate),
        threshold=14.4,
        extra={"long_burn_rate": burn_rate, "tier": "fast", "reason": "burning fast"},
    )


def resolution(alert: Alert, at_ms: int, burn_rate: str) -> Alert:
    return alert.model_copy(
        update={
            "alert_id": f"{alert.fingerprint}-{at_ms}-resolved",
            "status": AlertStatus.RESOLVED,
            "ends_at": from_epoch_ms(at_ms),
            "summary": "burn rate back under 14.4x",
            "labels": {**alert.labels, "long_burn_rate": burn_rate},
        }
    )


def test_identifying_labels_are_labels_and_figures_and_text_are_annotations() -> None:
    body = postable(
        Delivery(burn(Severity.PAGE, "page", "20.5"), burn(Severity.PAGE, "page", "20.5")),
        T0,
        240_000,
    )
    assert body["labels"] == {
        "alertname": "slo_burn_rate",
        "severity": "page",
        "guardstream_fingerprint": body["labels"]["guardstream_fingerprint"],
        "guardstream_severity": "page",
        "slo": "slo.availability",
        "slo_key": "openai/chat",
        "tier": "fast",
    }
    annotations = body["annotations"]
    assert annotations["long_burn_rate"] == "20.5"
    assert annotations["reason"] == "burning fast"
    assert annotations["summary"].startswith("SLO slo.availability burning")
    assert "value 20.5; threshold 14.4" in annotations["description"]


def test_a_firing_alert_ends_a_ttl_ahead_and_a_resolution_when_it_was_left() -> None:
    firing = burn(Severity.PAGE, "page", "20.5")
    body = postable(Delivery(firing, firing), T0 + 5_000, 240_000)
    assert body["startsAt"] == "2026-11-18T11:06:40.000Z"
    assert body["endsAt"] == "2026-11-18T11:10:45.000Z"
    resolved = resolution(firing, T0 + 60_000, "0.4")
    body = postable(Delivery(resolved, firing), T0 + 90_000, 240_000)
    assert body["endsAt"] == "2026-11-18T11:07:40.000Z"


def test_a_resolution_keeps_the_firing_labels_and_shows_its_own_values() -> None:
    firing = burn(Severity.PAGE, "page", "20.5")
    resolved = resolution(
        firing.model_copy(update={"labels": {**firing.labels, "tier": "slow"}}), T0 + 60_000, "0.4"
    )
    book = DeliveryBook()
    opened = book.observe(firing)
    closed = book.observe(resolved)
    first = postable(opened, T0, 240_000)
    last = postable(closed, T0, 240_000)
    assert last["labels"] == first["labels"]  # tier stays "fast": one incident, one label set
    assert last["annotations"]["long_burn_rate"] == "0.4"
    assert last["annotations"]["summary"] == "burn rate back under 14.4x"
    assert len(book) == 0


def test_a_resolution_whose_firing_was_never_seen_uses_its_own_labels() -> None:
    firing = burn(Severity.PAGE, "page", "20.5")
    resolved = resolution(firing, T0 + 60_000, "0.4")
    delivery = DeliveryBook().observe(resolved)
    assert delivery.identity is resolved


def test_the_book_keeps_the_open_incidents_newest_last_and_caps_them() -> None:
    book = DeliveryBook(max_firing=2)
    a, b, c = (burn(Severity.PAGE, "page", "20", at_ms=T0 + n) for n in range(3))
    others = [x.model_copy(update={"fingerprint": f"{n}" * 32}) for n, x in enumerate((a, b, c))]
    for alert in others:
        book.observe(alert)
    assert [d.alert.fingerprint for d in book.firing()] == ["1" * 32, "2" * 32]


def test_links_fill_in_kind_fingerprint_and_labels() -> None:
    firing = burn(Severity.PAGE, "page", "20.5")
    links = Links(
        runbook="https://runbooks/{kind}#{slo}",
        dashboard="https://grafana/d/x?var-key={slo_key}&var-missing={nope}",
        generator="http://worker:6066/status#{fingerprint}",
    )
    body = postable(Delivery(firing, firing), T0, 1, links)
    assert body["annotations"]["runbook_url"] == "https://runbooks/slo_burn_rate#slo.availability"
    assert (
        body["annotations"]["dashboard_url"]
        == "https://grafana/d/x?var-key=openai/chat&var-missing="
    )
    assert body["generatorURL"] == f"http://worker:6066/status#{firing.fingerprint}"
    assert postable(Delivery(firing, firing), T0, 1, Links(runbook="{0} {")).get("annotations")


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=8))
def test_every_label_name_is_valid_and_reserved_ones_are_never_overwritten(
    labels: dict[str, str],
) -> None:
    alert = firing_alert(
        "breaker_open",
        labels,
        severity=Severity.CRITICAL,
        summary="s",
        at_ms=T0,
        policy_version=VERSION,
    )
    names, shown = split_labels(alert)
    assert all(LABEL_NAME.match(name) for name in (*names, *shown))
    assert (names["alertname"], names["severity"]) == ("breaker_open", "critical")
    assert names["guardstream_fingerprint"] == alert.fingerprint
    assert all(LABEL_NAME.match(label_name(raw)) for raw in labels)


def test_a_start_in_the_future_still_ends_after_it() -> None:
    firing = burn(Severity.PAGE, "page", "20.5", at_ms=T0 + 10_000_000)
    body = postable(Delivery(firing, firing), T0, 1_000)
    assert body["endsAt"] > body["startsAt"]
    assert epoch_ms(firing.starts_at) == T0 + 10_000_000
