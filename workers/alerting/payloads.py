"""What each kind of receiver is sent for a batch of deliveries (pure).

* Alertmanager: its v2 `postableAlert` list (`workers.alerting.postable`);
* a generic webhook: Alertmanager's own webhook payload (version 4), so tooling written for
  Alertmanager's webhooks reads guardstream's unchanged;
* Slack-compatible incoming webhooks: one message, a line per alert;
* PagerDuty Events v2: one event per alert, `trigger` on firing and `resolve` on resolution,
  `dedup_key` = the alert's fingerprint, so PagerDuty keeps one incident per guardstream
  incident however often it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.alerts import AlertStatus
from schemas.types import Severity
from workers.alerting.postable import Delivery, Links, postable

_PAGERDUTY_SEVERITY = {
    Severity.PAGE: "critical",
    Severity.CRITICAL: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
_PAGERDUTY_SUMMARY_CHARS = 1024
_SLACK_ICON = {AlertStatus.FIRING: ":red_circle:", AlertStatus.RESOLVED: ":large_green_circle:"}


def alertmanager_alerts(
    deliveries: Sequence[Delivery], now_ms: int, ttl_ms: int, links: Links
) -> list[dict[str, Any]]:
    return [postable(d, now_ms, ttl_ms, links) for d in deliveries]


def webhook_payload(
    receiver: str, deliveries: Sequence[Delivery], now_ms: int, ttl_ms: int, links: Links
) -> dict[str, Any]:
    alerts = []
    for delivery, body in zip(
        deliveries, alertmanager_alerts(deliveries, now_ms, ttl_ms, links), strict=True
    ):
        alerts.append(
            {
                "status": delivery.alert.status.value,
                "fingerprint": delivery.alert.fingerprint,
                **body,
            }
        )
    common = dict(alerts[0]["labels"]) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    firing = any(d.alert.status is AlertStatus.FIRING for d in deliveries)
    return {
        "version": "4",
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": links.generator or "",
        "groupKey": "",
        "truncatedAlerts": 0,
    }


def slack_message(deliveries: Sequence[Delivery]) -> dict[str, Any]:
    lines = []
    for delivery in deliveries:
        alert = delivery.alert
        status = alert.status.value.upper()
        lines.append(
            f"{_SLACK_ICON[alert.status]} *[{status}]* `{alert.kind}` "
            f"({alert.severity.value}): {alert.summary}"
        )
    return {"text": "\n".join(lines)}


def pagerduty_event(delivery: Delivery, routing_key: str, source: str) -> dict[str, Any]:
    alert = delivery.alert
    if alert.status is AlertStatus.RESOLVED:
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.fingerprint,
        }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "payload": {
            "summary": alert.summary[:_PAGERDUTY_SUMMARY_CHARS],
            "source": source,
            "severity": _PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.starts_at.isoformat().replace("+00:00", "Z"),
            "component": alert.labels.get("vendor", alert.kind),
            "group": alert.labels.get("tool", ""),
            "class": alert.kind,
            "custom_details": {
                **delivery.identity.labels,
                "value": alert.value,
                "threshold": alert.threshold,
                "policy_version": alert.policy_version,
            },
        },
    }
