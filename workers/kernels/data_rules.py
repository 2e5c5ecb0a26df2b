"""Data-class rules as a pure decision (issue 13): may this vendor receive this data?

A caller of the gateway's ``check()`` declares the data classes a call carries; each class's
handling (`ClassHandling`, from ``data_classification.yaml``) says which vendor groups may
receive it and whether its results may be cached. `data_class_verdict` decides:

* **enforced here**: the vendor must be in one of the allowed groups of *every* declared class
  (`all` admits any vendor; the other groups are whatever the vendor registry lists, so a vendor
  the registry does not list is in none of them); a declared class that the policy does not
  define is denied (``unknown data class``): a typo must not let personal data through;
  a class that may not be cached (``can_cache: false``) removes ``use_cache`` from the
  fallbacks the gateway may use instead of the call;
* **reported only**, for the gateway to honour (guardstream sees no payloads and no storage):
  ``encryption_required`` (any class), ``restrictions`` (all classes', in order, once each) and
  ``retention_days`` (the shortest stated).

A declared class is a class id (``class.pii``) or a level (``pii``), which stands for every
class of that level. Every breach is listed, so one verdict names all the rules a call breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from workers.kernels.policy_limits import FALLBACK_ACTIONS

CACHE_FALLBACK = "use_cache"
SAFE_FALLBACK = "return_error"
"""What a gateway does when the fallback it prefers is not allowed: nothing leaves."""


class VendorGroup(StrEnum):
    """The groups `allowed_vendors` names (alpha-solver's data_classification.yaml)."""

    ALL = "all"
    """Every vendor, listed in the registry or not."""
    APPROVED_LIST = "approved_list"
    ENTERPRISE_ONLY = "enterprise_only"
    PRIVACY_CERTIFIED = "privacy_certified"
    HIPAA_COMPLIANT = "hipaa_compliant"


@dataclass(frozen=True, slots=True)
class VendorGroups:
    """Which vendors are in which group (the vendor registry's content). Membership is
    explicit: being in `hipaa_compliant` does not put a vendor in `approved_list`."""

    members: Mapping[VendorGroup, frozenset[str]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def admits(self, group: VendorGroup, vendor: str) -> bool:
        return group is VendorGroup.ALL or vendor in self.members.get(group, frozenset())


@dataclass(frozen=True, slots=True)
class ClassHandling:
    """One data class's handling rules."""

    class_id: str
    level: str
    allowed_vendors: frozenset[VendorGroup] = frozenset()
    """Empty: no vendor may receive the class."""
    can_cache: bool = False
    encryption_required: bool = True
    restrictions: tuple[str, ...] = ()
    retention_days: int | None = None


class DataRule(StrEnum):
    VENDOR_NOT_ALLOWED = "vendor_not_allowed"
    UNKNOWN_CLASS = "unknown_class"


@dataclass(frozen=True, slots=True)
class DataRuleBreach:
    rule: DataRule
    data_class: str
    """The class id (or the declared name, for an unknown class)."""
    vendor: str
    allowed_groups: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        if self.rule is DataRule.UNKNOWN_CLASS:
            return f"unknown data class {self.data_class!r}"
        groups = ", ".join(self.allowed_groups) or "no vendor group"
        return f"{self.data_class} may not go to vendor {self.vendor!r} (allowed: {groups})"


ALL_FALLBACKS: tuple[str, ...] = FALLBACK_ACTIONS


@dataclass(frozen=True, slots=True)
class DataClassVerdict:
    breaches: tuple[DataRuleBreach, ...] = ()
    classes: tuple[ClassHandling, ...] = ()
    """The handling of every declared class, in declaration order, once each."""
    fallbacks: tuple[str, ...] = ALL_FALLBACKS
    encryption_required: bool = False
    restrictions: tuple[str, ...] = ()
    retention_days: int | None = None

    @property
    def allowed(self) -> bool:
        return not self.breaches

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(breach.reason for breach in self.breaches)

    def fallback(self, preferred: str | None) -> str | None:
        """`preferred` (a breaker's `fallback_action`) if the data allows it, else
        SAFE_FALLBACK; None stays None (the breaker names no fallback)."""
        if preferred is None or preferred in self.fallbacks:
            return preferred
        return SAFE_FALLBACK


def data_class_verdict(
    handling: Mapping[str, ClassHandling],
    registry: VendorGroups,
    vendor: str,
    declared_classes: Iterable[str],
) -> DataClassVerdict:
    """Whether `vendor` may receive data of `declared_classes`, under `handling` (class id ->
    handling) and `registry`, with what the gateway must honour."""
    classes: dict[str, ClassHandling] = {}
    breaches: list[DataRuleBreach] = []
    for declared in dict.fromkeys(declared_classes):
        found = _classes_named(handling, declared)
        if not found:
            breaches.append(DataRuleBreach(DataRule.UNKNOWN_CLASS, declared, vendor))
        for rules in found:
            classes.setdefault(rules.class_id, rules)
    for rules in classes.values():
        if not any(registry.admits(group, vendor) for group in rules.allowed_vendors):
            groups = tuple(sorted(rules.allowed_vendors))
            breaches.append(
                DataRuleBreach(DataRule.VENDOR_NOT_ALLOWED, rules.class_id, vendor, groups)
            )
    stated = [r.retention_days for r in classes.values() if r.retention_days is not None]
    no_cache = any(not rules.can_cache for rules in classes.values())
    return DataClassVerdict(
        breaches=tuple(breaches),
        classes=tuple(classes.values()),
        fallbacks=tuple(f for f in ALL_FALLBACKS if not (no_cache and f == CACHE_FALLBACK)),
        encryption_required=any(rules.encryption_required for rules in classes.values()),
        restrictions=tuple(
            dict.fromkeys(item for rules in classes.values() for item in rules.restrictions)
        ),
        retention_days=min(stated, default=None),
    )


def _classes_named(handling: Mapping[str, ClassHandling], declared: str) -> list[ClassHandling]:
    """The class with id `declared`, else every class of level `declared`."""
    if declared in handling:
        return [handling[declared]]
    return [rules for rules in handling.values() if rules.level == declared]
