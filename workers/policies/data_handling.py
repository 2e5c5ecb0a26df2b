"""Per-class handling of data_classification.yaml (issue 13): what a call carrying a class may do.

The classification policy (`classification`) reads the file once; this module reads, from each
``classifications.<id>`` entry, what `workers.kernels.data_rules` decides with:

* ``allowed_vendors``: ``all``, or a list of vendor groups (approved_list, enterprise_only,
  privacy_certified, hipaa_compliant; `all` may be listed too), which the vendor registry fills;
* ``can_cache`` (false removes ``use_cache`` from the fallbacks), ``encryption_required``,
  ``restrictions`` and ``retention_days``, passed to the gateway in the verdict.

A class's handling is what its entry says (a file's entry replaces the built-in one of the same
id as a whole) and what it omits is the strictest: no vendor, no caching, encryption required.
A class without ``allowed_vendors`` is therefore denied to every vendor, which the loader notes:
a class that says nothing about vendors is not one to send anywhere by accident. The other keys
of an entry (color_code, audit_access, access_control...) are the masking's or not evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import PlainValidator

from workers.kernels.data_rules import ClassHandling, VendorGroup
from workers.kernels.policy_limits import MAX_RETENTION_DAYS
from workers.policies.fields import OpenModel, OptBool, OptStrings, int_in, rule_error
from workers.policies.files import Problems
from workers.policies.parsing import validate_entry

_GROUPS = "|".join(VendorGroup)


def vendor_groups(value: Any) -> frozenset[VendorGroup]:
    if value == VendorGroup.ALL:
        return frozenset({VendorGroup.ALL})
    if isinstance(value, list) and all(item in list(VendorGroup) for item in value):
        return frozenset(VendorGroup(item) for item in value)
    raise rule_error(f"must be all, or a list of vendor groups ({_GROUPS})")


class HandlingSpec(OpenModel):
    allowed_vendors: Annotated[frozenset[VendorGroup] | None, PlainValidator(vendor_groups)] = None
    can_cache: OptBool = None
    encryption_required: OptBool = None
    restrictions: OptStrings = None
    retention_days: Annotated[int | None, PlainValidator(int_in(1, MAX_RETENTION_DAYS))] = None


def class_handling(
    builtin: Mapping[str, Any],
    spec: Mapping[str, Any],
    levels: Mapping[str, str],
    problems: Problems,
) -> dict[str, ClassHandling]:
    """The handling of each class of `levels` (class id -> level: the policy's classes, built-in
    ones included): from its entry in `spec`, else from `builtin` (the built-in spec). A class
    whose entry is not a mapping is not in `levels` (its error is recorded already)."""
    written = spec.get("classifications", {})
    entries = written if isinstance(written, dict) else {}
    handling: dict[str, ClassHandling] = {}
    for cid, level in levels.items():
        entry = entries.get(cid, builtin["classifications"].get(cid, {}))
        rules = validate_entry(HandlingSpec, entry, problems, "classifications", cid)
        if rules is None:
            continue
        if rules.allowed_vendors is None:
            problems.note(f"classifications.{cid}", "no allowed_vendors: denied to every vendor")
        stated = {key: getattr(rules, key) for key in HandlingSpec.model_fields}
        handling[cid] = ClassHandling(
            cid, level, **{k: v for k, v in stated.items() if v is not None}
        )
    return handling
