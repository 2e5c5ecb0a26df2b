"""An alert record as Alertmanager's v2 API takes it (`POST /api/v2/alerts`), pure.

Alertmanager identifies an alert by its label set, so an incident must keep one label set from
firing to resolution: the labels always come from the *firing* record (`Delivery.identity`),
while the annotations come from the record being sent, so a resolution shows the values at
resolution. Labels:

* `alertname` = the alert kind, `severity`, `guardstream_fingerprint` (one incident);
* the record's labels that read as identifiers (no whitespace, not a number, at most
  `MAX_LABEL_VALUE` characters): vendor, tool, budget, slo, slo_key, tier... Free text and
  figures (a breaker's reason, burn rates) become annotations instead, since Alertmanager
  groups and routes on labels. A record label named like one of the three above keeps its
  value as `guardstream_<name>` (an SLO alert's `severity` page/ticket: `guardstream_severity`).

Names are made valid for Prometheus (`[a-zA-Z_][a-zA-Z0-9_]*`).

Times: `startsAt` is when the condition was entered (event time); a resolution's `endsAt` is
when it was left. A firing alert's `endsAt` is `now + ttl`: the forwarder re-sends firing alerts
well within it, so an alert ends by itself only if the forwarder stops for longer (the
convention Prometheus follows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.alerts import Alert, AlertStatus
from schemas.types import epoch_ms, from_epoch_ms

MAX_LABEL_VALUE = 128
RESERVED = ("alertname", "severity", "guardstream_fingerprint")
_INVALID_NAME_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A record to send, and the firing record whose labels identify its incident (the record
    itself when it fires, or when its firing was never seen)."""

    alert: Alert
    identity: Alert


@dataclass(frozen=True, slots=True)
class Links:
    """Where an alert points humans: `{kind}`, `{fingerprint}` and any label name in braces are
    filled in (a label the alert does not have leaves its placeholder out)."""

    runbook: str | None = None
    dashboard: str | None = None
    generator: str | None = None


def postable(
    delivery: Delivery, now_ms: int, ttl_ms: int, links: Links = Links()
) -> dict[str, Any]:
    """The Alertmanager v2 `postableAlert` of one delivery."""
    alert, identity = delivery.alert, delivery.identity
    labels, shown = split_labels(identity)
    if alert is not identity:
        _, shown = split_labels(alert)
    annotations = {"summary": alert.summary, "description": _description(alert), **shown}
    annotations["alert_id"] = alert.alert_id
    annotations["policy_version"] = alert.policy_version
    for name, template in (("runbook_url", links.runbook), ("dashboard_url", links.dashboard)):
        if template:
            annotations[name] = _filled(template, alert)
    starts = epoch_ms(alert.starts_at)
    if alert.status is AlertStatus.RESOLVED and alert.ends_at is not None:
        ends = epoch_ms(alert.ends_at)
    else:
        ends = max(now_ms + ttl_ms, starts + 1)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(from_epoch_ms(starts)),
        "endsAt": _rfc3339(from_epoch_ms(ends)),
    }
    if links.generator:
        body["generatorURL"] = _filled(links.generator, alert)
    return body


def split_labels(alert: Alert) -> tuple[dict[str, str], dict[str, str]]:
    """(Alertmanager labels, annotations) of a record's labels."""
    labels = {
        "alertname": alert.kind,
        "severity": alert.severity.value,
        "guardstream_fingerprint": alert.fingerprint,
    }
    shown: dict[str, str] = {}
    for raw_name, value in sorted(alert.labels.items()):
        name = label_name(raw_name)
        if name in RESERVED:
            name = f"guardstream_{name}"
        if name in labels:
            continue
        if _identifier_like(value):
            labels[name] = value
        else:
            shown[name] = value
    return labels, shown


def label_name(name: str) -> str:
    cleaned = _INVALID_NAME_CHARACTER.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _identifier_like(value: str) -> bool:
    if not value or len(value) > MAX_LABEL_VALUE or any(c.isspace() for c in value):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _description(alert: Alert) -> str:
    parts = [alert.summary]
    if alert.value is not None:
        parts.append(f"value {alert.value:g}")
    if alert.threshold is not None:
        parts.append(f"threshold {alert.threshold:g}")
    return "; ".join(parts)


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _filled(template: str, alert: Alert) -> str:
    values = _Placeholders(alert.labels)
    values.update(kind=alert.kind, fingerprint=alert.fingerprint)
    try:
        return template.format_map(values)
    except (ValueError, IndexError, AttributeError):  # a brace that is no placeholder
        return template


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
