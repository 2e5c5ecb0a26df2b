"""Calls that broke a data-class rule, in the audit trail (`aud.risk.triggered`, issue 13). Pure.

The gateway's `check()` denies a call whose data may not go to its vendor; a reported call
that did go there anyway (a gateway that does not ask, or ignores the answer) is a risk the
worker records. A tool invocation's data classes are those its producer declared (the
event's `data_classification` and the attribute `data_classes`, comma-separated; class ids
or levels: ``class.phi`` or ``phi``; `report(data_classes=...)` writes the attribute) and
those the classification policy's detectors find in the event (an SSN in an
attribute...); `workers.kernels.data_rules` judges them against the vendor registry.

Only a deployment with a vendor registry (a `vendors.yaml`) is judged: without one no vendor
is in any group, and every call carrying personal data would be a "risk" nobody can act on.

The record carries the seed's required fields of `aud.risk.triggered`: `risk_id` (the rule
broken), `score` (by the strictest class level: phi 1.0, pii 0.9, confidential 0.7,
internal 0.4, anything else 0.5), `mitigation_action` (`deny`: what `check()` answers for
such a call) and `escalation_path` (`security`), plus the call's coordinates, the classes,
and each breach's reason. Never a value of the event: detections give classes, not text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.events import DATA_CLASSES_ATTRIBUTE, ToolInvocation
from workers.kernels.data_rules import ClassHandling, VendorGroups, data_class_verdict
from workers.masking.masker import Masker
from workers.policies.policy_set import PolicySet
from workers.policies.vendor_registry import default_vendor_registry

MAX_DECLARED_CLASSES: Final = 16
"""Classes read from one event's attribute (the attribute's length is capped already)."""
_SCORES: Final = {"phi": 1.0, "pii": 0.9, "confidential": 0.7, "internal": 0.4}
_DEFAULT_SCORE: Final = 0.5


@dataclass(frozen=True, slots=True)
class DataRiskRules:
    handling: Mapping[str, ClassHandling]
    registry: VendorGroups
    masker: Masker

    @classmethod
    def from_policies(cls, policies: PolicySet, masker: Masker) -> DataRiskRules | None:
        """The rules `policies` set, or None when they hold no vendor registry."""
        if policies.vendors.version == default_vendor_registry().version:
            return None
        return cls(policies.classification.data_handling, policies.vendors.groups, masker)


def declared_classes(event: ToolInvocation) -> tuple[str, ...]:
    listed = event.attributes.get(DATA_CLASSES_ATTRIBUTE, "").split(",")
    names = (name.strip() for name in (event.data_classification or "", *listed))
    return tuple(dict.fromkeys(name for name in names if name))[:MAX_DECLARED_CLASSES]


def risk_payload(
    rules: DataRiskRules, event: ToolInvocation, document: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The `aud.risk.triggered` payload for a call that broke a data-class rule, else None."""
    declared = declared_classes(event)
    detected = sorted({f.classification for f in rules.masker.mask(dict(document)).findings})
    if not declared and not detected:
        return None
    verdict = data_class_verdict(
        rules.handling, rules.registry, event.vendor, declared + tuple(detected)
    )
    if verdict.allowed:
        return None
    levels = [handling.level for handling in verdict.classes]
    return {
        "risk_id": f"data_class.{verdict.breaches[0].rule}",
        "score": max(
            (_SCORES.get(level, _DEFAULT_SCORE) for level in levels), default=_DEFAULT_SCORE
        ),
        "mitigation_action": "deny",
        "escalation_path": "security",
        "event_id": event.event_id,
        "vendor": event.vendor,
        "tool": event.tool,
        "declared_classes": list(declared),
        "detected_classes": detected,
        "breaches": [
            {"rule": str(b.rule), "data_class": b.data_class, "reason": b.reason}
            for b in verdict.breaches
        ],
        "restrictions": list(verdict.restrictions),
    }
