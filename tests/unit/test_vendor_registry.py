"""Vendor registry loading (workers/policies/vendor_registry.py): the example file, the empty
default, and errors that name the file, the path inside it and the bad value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from schemas.limits import MAX_ID_LEN
from schemas.policy import PolicyDocument, PolicyKind
from tests.support.policy_files import PolicyFiles
from workers.errors import ConfigError
from workers.kernels.data_rules import VendorGroup
from workers.kernels.policy_limits import MAX_VENDORS_PER_GROUP
from workers.policies.vendor_registry import (
    VendorRegistry,
    default_vendor_registry,
    load_vendor_registry,
)
from workers.settings import Mode

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "vendors.yaml"
FILES = PolicyFiles(load_vendor_registry, "vendors.yaml")
write, error_at = FILES.write, FILES.error_at
ALL, APPROVED = VendorGroup.ALL, VendorGroup.APPROVED_LIST
ENTERPRISE, PRIVACY, HIPAA = (
    VendorGroup.ENTERPRISE_ONLY,
    VendorGroup.PRIVACY_CERTIFIED,
    VendorGroup.HIPAA_COMPLIANT,
)


def registry(tmp_path: Path, groups: Any) -> VendorRegistry:
    return load_vendor_registry(write(tmp_path, {"vendor_groups": groups}))


def refused(tmp_path: Path, groups: Any, where: str) -> str:
    return error_at(write(tmp_path, {"vendor_groups": groups}), where)


def test_example_file_loads() -> None:
    policy = load_vendor_registry(EXAMPLE.parent)  # a directory: finds vendors.yaml
    assert (policy.name, policy.source) == ("vendors", str(EXAMPLE))
    assert policy.document.kind is PolicyKind.VENDORS
    assert policy.groups_of("azure-openai") == (ALL, APPROVED, ENTERPRISE, PRIVACY, HIPAA)
    assert policy.groups_of("openai") == (ALL, APPROVED)
    assert policy.groups_of("someone-else") == (ALL,)
    assert policy.notes == ()


def test_membership_is_explicit_and_exact(tmp_path: Path) -> None:
    policy = registry(tmp_path, {"hipaa_compliant": ["acme"]})
    assert policy.groups_of("acme") == (ALL, HIPAA)  # not approved_list: not listed there
    assert policy.groups_of("ACME") == (ALL,)
    assert policy.groups.members == {HIPAA: frozenset({"acme"})}


def test_default_is_empty_only_all_admits_anyone() -> None:
    policy = default_vendor_registry(Mode.PRODUCTION)
    assert policy.source == "<built-in>"
    assert policy.groups_of("openai") == (ALL,)
    assert policy.groups.members == {}


def test_second_file_stem_is_found(tmp_path: Path) -> None:
    write(tmp_path, {"vendor_groups": {"approved_list": ["x"]}}, "vendor_registry.yaml")
    assert load_vendor_registry(tmp_path).groups_of("x") == (ALL, APPROVED)


def test_from_document_round_trip_and_kind_check() -> None:
    policy = load_vendor_registry(EXAMPLE)
    again = VendorRegistry.from_document(
        PolicyDocument.model_validate_json(policy.document.model_dump_json())
    )
    assert (again.version, again.groups) == (policy.version, policy.groups)
    wrong = PolicyDocument.from_spec(PolicyKind.BUDGETS, "x", {}, source="x.yaml")
    with pytest.raises(ConfigError, match=re.escape("x.yaml: policy kind must be vendors")):
        VendorRegistry.from_document(wrong)


def test_all_cannot_be_listed(tmp_path: Path) -> None:
    message = refused(tmp_path, {"all": ["openai"]}, "vendor_groups.all")
    assert message.endswith("cannot be listed: every vendor is in it")


def test_an_unknown_group_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    message = refused(tmp_path, {"hipaa_complaint": ["x"]}, "vendor_groups.hipaa_complaint")
    known = "approved_list|enterprise_only|privacy_certified|hipaa_compliant"
    assert message.endswith(f"unknown vendor group (known: {known})")


@pytest.mark.parametrize(
    ("vendors", "where", "rule"),
    [
        ("openai", "", "must be a list of vendor names, not 'openai'"),
        (["openai", 5], "[1]", f"must be a vendor name of 1-{MAX_ID_LEN} characters, not 5"),
        ([""], "[0]", "must be a vendor name"),
        (["v" * (MAX_ID_LEN + 1)], "[0]", "must be a vendor name"),
        (["v"] * (MAX_VENDORS_PER_GROUP + 1), "", f"at most {MAX_VENDORS_PER_GROUP:,} vendors"),
    ],
)
def test_bad_vendor_lists_are_named(tmp_path: Path, vendors: Any, where: str, rule: str) -> None:
    assert rule in refused(
        tmp_path, {"approved_list": vendors}, f"vendor_groups.approved_list{where}"
    )


def test_every_bad_group_is_reported_at_once(tmp_path: Path) -> None:
    file = write(tmp_path, {"vendor_groups": {"all": [], "approved_list": [1], "x": []}})
    paths = [line.split(": ")[1] for line in FILES.errors(file).splitlines()]
    assert paths == ["vendor_groups.all", "vendor_groups.approved_list[0]", "vendor_groups.x"]


def test_unknown_top_level_keys_are_refused(tmp_path: Path) -> None:
    file = write(tmp_path, {"vendor_groups": {}, "vendor_grups": {}})
    assert error_at(file, "vendor_grups").endswith("unknown field, not {}")


def test_vendor_groups_must_be_a_mapping(tmp_path: Path) -> None:
    assert "valid dictionary" in refused(tmp_path, ["openai"], "vendor_groups")
