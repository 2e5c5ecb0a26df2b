"""Vendor registry (issue 13): which vendor is in which vendor group.

``data_classification.yaml`` says which vendor groups may receive each data class
(`allowed_vendors`); this policy says who is in those groups. guardstream's own shape, file
``vendors.yaml`` (example: examples/policies/vendors.yaml)::

    vendor_groups:
      approved_list: [openai, anthropic, azure-openai]
      enterprise_only: [anthropic, azure-openai]
      privacy_certified: [azure-openai]
      hipaa_compliant: [azure-openai]

* The groups are the seed's: approved_list, enterprise_only, privacy_certified,
  hipaa_compliant. ``all`` is implicit (every vendor, listed or not) and cannot be listed; any
  other group name is an error (a typo must not leave a group silently empty).
* Membership is explicit: a vendor in hipaa_compliant is not in approved_list unless listed
  there too. Vendor names match exactly (case included), as the gateway passes them to
  ``check()``, which is the events' `vendor`.
* A group the file does not list has no vendor. No file (`default_vendor_registry`) is an empty
  registry: only ``all`` admits anyone, so every class restricted to a group is denied to every
  vendor, which fails closed until someone says which vendors are approved.
* Caps: MAX_VENDORS_PER_GROUP names per group, each 1-MAX_ID_LEN characters.

The runtime mode changes nothing; `mode` keeps the loaders' signatures alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.limits import MAX_ID_LEN
from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.data_rules import VendorGroup, VendorGroups
from workers.kernels.policy_limits import MAX_VENDORS_PER_GROUP
from workers.policies.fields import StrictModel
from workers.policies.files import (
    LoadedPolicy,
    Problems,
    builtin_policy_document,
    load_policy_document,
    require_kind,
)
from workers.policies.parsing import parse_policy, validate_entry
from workers.settings import Mode

# Looked for in a policy directory, in this order.
FILE_STEMS = ("vendors", "vendor_registry")

LISTED_GROUPS = tuple(group for group in VendorGroup if group is not VendorGroup.ALL)


class VendorRegistrySpec(StrictModel):
    vendor_groups: dict[str, Any] = {}  # groups checked one by one, each at its own path


@dataclass(frozen=True, eq=False)
class VendorRegistry(LoadedPolicy):
    """A validated vendor registry."""

    groups: VendorGroups

    def groups_of(self, vendor: str) -> tuple[VendorGroup, ...]:
        """Every group `vendor` is in, `all` first."""
        return tuple(group for group in VendorGroup if self.groups.admits(group, vendor))

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> VendorRegistry:
        """The registry a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.VENDORS)
        return _from_spec(doc.spec, doc)


def load_vendor_registry(path: Path, mode: Mode = Mode.DEVELOPMENT) -> VendorRegistry:
    """Read and validate a vendor registry file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.VENDORS)
    return _from_spec(spec, doc)


def default_vendor_registry(mode: Mode = Mode.DEVELOPMENT) -> VendorRegistry:
    """No file: an empty registry (only `all` admits a vendor; see the module docstring)."""
    spec, doc = builtin_policy_document(PolicyKind.VENDORS, {"vendor_groups": {}})
    return _from_spec(spec, doc)


def _from_spec(spec: Mapping[str, Any], doc: PolicyDocument) -> VendorRegistry:
    groups, loaded = parse_policy(doc, spec, MappingProxyType({}), _parse)
    return VendorRegistry(**loaded, groups=groups)


def _parse(
    spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems
) -> VendorGroups | None:
    model = validate_entry(VendorRegistrySpec, spec, problems)
    if model is None:
        return None
    known = "|".join(LISTED_GROUPS)
    members: dict[VendorGroup, frozenset[str]] = {}
    for name, vendors in model.vendor_groups.items():
        path = f"vendor_groups.{name}"
        if name == VendorGroup.ALL:
            problems.error(path, "cannot be listed: every vendor is in it")
        elif name not in LISTED_GROUPS:
            problems.error(path, f"unknown vendor group (known: {known})")
        else:
            members[VendorGroup(name)] = _vendors(vendors, path, problems)
    return VendorGroups(MappingProxyType(members))


def _vendors(raw: Any, path: str, problems: Problems) -> frozenset[str]:
    if not isinstance(raw, list):
        problems.error(path, "must be a list of vendor names", raw)
        return frozenset()
    if len(raw) > MAX_VENDORS_PER_GROUP:
        problems.error(path, f"at most {MAX_VENDORS_PER_GROUP:,} vendors (the limit)", len(raw))
        return frozenset()
    for i, vendor in enumerate(raw):
        if not isinstance(vendor, str) or not 1 <= len(vendor) <= MAX_ID_LEN:
            problems.error(
                f"{path}[{i}]", f"must be a vendor name of 1-{MAX_ID_LEN} characters", vendor
            )
    return frozenset(vendor for vendor in raw if isinstance(vendor, str))
