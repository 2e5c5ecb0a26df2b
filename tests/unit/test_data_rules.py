"""Data-class rules (workers/kernels/data_rules.py) and the per-class handling read from
data_classification.yaml (workers/policies/data_handling.py): which vendor may receive which
class, the fallbacks left, what is passed through, and errors that name the file and path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.policy_files import ALPHA_SOLVER_SEEDS, PolicyFiles, read_spec
from workers.kernels.data_rules import (
    ALL_FALLBACKS,
    ClassHandling,
    DataClassVerdict,
    DataRule,
    DataRuleBreach,
    VendorGroup,
    VendorGroups,
    data_class_verdict,
)
from workers.kernels.policy_limits import MAX_RETENTION_DAYS
from workers.policies.classification import (
    default_classification_policy,
    load_classification_policy,
)
from workers.policies.vendor_registry import load_vendor_registry

SEED = ALPHA_SOLVER_SEEDS / "data_classification.yaml"
EXAMPLE_VENDORS = Path(__file__).resolve().parents[2] / "examples" / "policies" / "vendors.yaml"
HANDLING = load_classification_policy(SEED).data_handling
REGISTRY = load_vendor_registry(EXAMPLE_VENDORS).groups
FILES = PolicyFiles(load_classification_policy, "data_classification.yaml")
ALL, APPROVED, ENTERPRISE = VendorGroup.ALL, VendorGroup.APPROVED_LIST, VendorGroup.ENTERPRISE_ONLY
PRIVACY, HIPAA = VendorGroup.PRIVACY_CERTIFIED, VendorGroup.HIPAA_COMPLIANT
NO_CACHE = tuple(f for f in ALL_FALLBACKS if f != "use_cache")


def verdict(vendor: str, *classes: str, registry: VendorGroups = REGISTRY) -> DataClassVerdict:
    return data_class_verdict(HANDLING, registry, vendor, classes)


# --- the seed's handling ---------------------------------------------------------------------


def test_seed_handling_is_read_per_class() -> None:
    assert dict(HANDLING) == {
        "class.public": ClassHandling(
            "class.public", "public", frozenset({ALL}), can_cache=True, encryption_required=False
        ),
        "class.internal": ClassHandling(
            "class.internal",
            "internal",
            frozenset({APPROVED}),
            can_cache=True,
            encryption_required=False,
            restrictions=("no_external_sharing",),
        ),
        "class.confidential": ClassHandling(
            "class.confidential",
            "confidential",
            frozenset({ENTERPRISE}),
            restrictions=("no_external_sharing", "audit_required", "need_to_know"),
            retention_days=1095,
        ),
        "class.pii": ClassHandling(
            "class.pii",
            "pii",
            frozenset({PRIVACY}),
            restrictions=(
                "encryption_required",
                "no_third_party",
                "right_to_delete",
                "consent_required",
            ),
            retention_days=730,
        ),
        "class.phi": ClassHandling(
            "class.phi",
            "phi",
            frozenset({HIPAA}),
            restrictions=(
                "baa_required",
                "audit_trail",
                "encryption_transit_rest",
                "minimum_necessary",
            ),
            retention_days=2190,
        ),
        # guardstream's own class (API keys, tokens): to no vendor.
        "class.credential": ClassHandling("class.credential", "credential"),
    }


def test_the_default_policy_has_the_seeds_handling() -> None:
    assert dict(default_classification_policy().data_handling) == dict(HANDLING)
    assert default_classification_policy().notes == ()


# --- verdicts --------------------------------------------------------------------------------


def test_no_declared_class_is_allowed_with_every_fallback() -> None:
    assert verdict("anyone") == DataClassVerdict()
    assert DataClassVerdict().allowed
    assert DataClassVerdict().fallbacks == ALL_FALLBACKS


def test_public_data_goes_to_any_vendor_listed_or_not() -> None:
    result = verdict("someone-new", "class.public")
    assert result.allowed
    assert result.fallbacks == ALL_FALLBACKS
    assert result.encryption_required is False


def test_a_vendor_outside_the_allowed_groups_is_denied_naming_class_and_groups() -> None:
    assert verdict("openai", "class.internal").allowed
    result = verdict("mistral", "class.internal")
    assert not result.allowed
    assert result.breaches == (
        DataRuleBreach(
            DataRule.VENDOR_NOT_ALLOWED, "class.internal", "mistral", ("approved_list",)
        ),
    )
    assert result.reasons == (
        "class.internal may not go to vendor 'mistral' (allowed: approved_list)",
    )


def test_every_declared_class_must_admit_the_vendor_and_every_breach_is_named() -> None:
    assert verdict("azure-openai", "class.pii", "class.phi").allowed
    result = verdict("bedrock", "class.pii", "class.phi", "class.confidential")
    assert [(b.data_class, b.allowed_groups) for b in result.breaches] == [
        ("class.phi", ("hipaa_compliant",)),
    ]
    result = verdict("openai", "class.pii", "class.phi")
    assert [b.data_class for b in result.breaches] == ["class.pii", "class.phi"]


def test_pii_removes_use_cache_and_passes_its_rules_through() -> None:
    result = verdict("azure-openai", "class.public", "class.pii")
    assert result.allowed
    assert result.fallbacks == NO_CACHE
    assert result.encryption_required is True
    assert result.retention_days == 730
    assert result.restrictions == (
        "encryption_required",
        "no_third_party",
        "right_to_delete",
        "consent_required",
    )
    assert [c.class_id for c in result.classes] == ["class.public", "class.pii"]


def test_restrictions_are_merged_once_each_and_the_shortest_retention_wins() -> None:
    result = verdict("azure-openai", "class.confidential", "class.internal", "class.phi")
    assert result.restrictions == (
        "no_external_sharing",
        "audit_required",
        "need_to_know",
        "baa_required",
        "audit_trail",
        "encryption_transit_rest",
        "minimum_necessary",
    )
    assert result.retention_days == 1095
    assert verdict("x", "class.public").retention_days is None


def test_an_unknown_class_is_denied() -> None:
    result = verdict("azure-openai", "class.pii", "class.secret")
    assert not result.allowed
    assert result.breaches == (
        DataRuleBreach(DataRule.UNKNOWN_CLASS, "class.secret", "azure-openai"),
    )
    assert result.reasons == ("unknown data class 'class.secret'",)
    assert result.fallbacks == NO_CACHE  # what is known still applies


def test_a_level_stands_for_its_classes_and_repeats_count_once() -> None:
    assert verdict("mistral", "pii") == verdict("mistral", "class.pii")
    assert (
        verdict("mistral", "pii", "class.pii", "pii").breaches == verdict("mistral", "pii").breaches
    )


def test_an_empty_registry_fails_closed_for_every_restricted_class() -> None:
    empty = VendorGroups()
    assert verdict("openai", "class.public", registry=empty).allowed
    for restricted in ("class.internal", "class.confidential", "class.pii", "class.phi"):
        assert not verdict("openai", restricted, registry=empty).allowed
    assert verdict("x", "class.internal", registry=empty).reasons == (
        "class.internal may not go to vendor 'x' (allowed: approved_list)",
    )


def test_credentials_go_to_no_vendor() -> None:
    result = verdict("azure-openai", "class.credential")
    assert result.reasons == (
        "class.credential may not go to vendor 'azure-openai' (allowed: no vendor group)",
    )


@pytest.mark.parametrize(
    ("classes", "preferred", "chosen"),
    [
        (("class.pii",), "use_cache", "return_error"),
        (("class.pii",), "use_default", "use_default"),
        (("class.pii",), None, None),
        (("class.public",), "use_cache", "use_cache"),
        ((), "use_fallback_vendor", "use_fallback_vendor"),
    ],
)
def test_the_breakers_fallback_is_kept_only_when_the_data_allows_it(
    classes: tuple[str, ...], preferred: str | None, chosen: str | None
) -> None:
    assert verdict("azure-openai", *classes).fallback(preferred) == chosen


# --- properties ------------------------------------------------------------------------------

DECLARABLE = [*HANDLING, "pii", "phi", "internal", "class.unknown", "nope"]
VENDORS = ["openai", "anthropic", "azure-openai", "bedrock", "mistral"]


def resolved(declared: list[str]) -> list[ClassHandling] | None:
    """The classes `declared` names, or None if a name is unknown: the rule, spelled out."""
    found = []
    for name in declared:
        named = [h for cid, h in HANDLING.items() if name in (cid, h.level)]
        if not named:
            return None
        found += named
    return found


@given(st.sampled_from(VENDORS), st.lists(st.sampled_from(DECLARABLE), max_size=5))
def test_allowed_iff_every_declared_class_admits_the_vendor(
    vendor: str, declared: list[str]
) -> None:
    result = verdict(vendor, *declared)
    classes = resolved(declared)
    if classes is None:
        assert not result.allowed
        return
    members = {group: REGISTRY.admits(group, vendor) for group in VendorGroup}
    assert result.allowed == all(any(members[g] for g in c.allowed_vendors) for c in classes)
    assert ("use_cache" in result.fallbacks) == all(c.can_cache for c in classes)
    assert result.encryption_required == any(c.encryption_required for c in classes)


@given(
    st.sampled_from(VENDORS),
    st.lists(st.sampled_from(DECLARABLE), max_size=4),
    st.lists(st.sampled_from(DECLARABLE), min_size=1, max_size=2),
)
def test_declaring_more_never_allows_more(
    vendor: str, declared: list[str], more: list[str]
) -> None:
    before, after = verdict(vendor, *declared), verdict(vendor, *declared, *more)
    assert set(before.breaches) <= set(after.breaches)
    assert set(after.fallbacks) <= set(before.fallbacks)
    assert set(before.restrictions) <= set(after.restrictions)


@given(st.sampled_from(VENDORS), st.lists(st.sampled_from(DECLARABLE), max_size=5), st.randoms())
def test_the_order_of_declared_classes_changes_no_decision(
    vendor: str, declared: list[str], rng: Any
) -> None:
    shuffled = list(declared)
    rng.shuffle(shuffled)
    one, other = verdict(vendor, *declared), verdict(vendor, *shuffled)
    assert (one.allowed, one.fallbacks, one.encryption_required, one.retention_days) == (
        other.allowed,
        other.fallbacks,
        other.encryption_required,
        other.retention_days,
    )
    assert set(one.breaches) == set(other.breaches)
    assert set(one.restrictions) == set(other.restrictions)


# --- handling in a policy file ---------------------------------------------------------------


def seed_with(cid: str, entry: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = read_spec(SEED)
    spec["classifications"][cid] = {"id": cid, **entry}
    return spec


def test_a_class_without_allowed_vendors_is_denied_everywhere_and_noted(tmp_path: Path) -> None:
    spec = seed_with("class.employee", {"level": "internal"})
    policy = load_classification_policy(FILES.write(tmp_path, spec))
    rules = policy.data_handling["class.employee"]
    assert rules == ClassHandling("class.employee", "internal")  # the strictest defaults
    assert (rules.allowed_vendors, rules.can_cache, rules.encryption_required) == (
        frozenset(),
        False,
        True,
    )
    assert (
        "classifications.class.employee: no allowed_vendors: denied to every vendor" in policy.notes
    )
    assert not data_class_verdict(
        policy.data_handling, REGISTRY, "openai", ["class.employee"]
    ).allowed


def test_a_files_entry_replaces_the_built_in_one_as_a_whole(tmp_path: Path) -> None:
    spec = {
        "classifications": {
            "class.pii": {"id": "class.pii", "level": "pii", "allowed_vendors": "all"}
        }
    }
    policy = load_classification_policy(FILES.write(tmp_path, spec))
    assert policy.data_handling["class.pii"] == ClassHandling("class.pii", "pii", frozenset({ALL}))
    # Classes the file does not define keep the built-in (seed) handling.
    assert policy.data_handling["class.phi"] == HANDLING["class.phi"]


def test_all_may_be_listed_among_groups(tmp_path: Path) -> None:
    spec = seed_with("class.x", {"level": "x", "allowed_vendors": ["approved_list", "all"]})
    rules = load_classification_policy(FILES.write(tmp_path, spec)).data_handling["class.x"]
    assert rules.allowed_vendors == frozenset({APPROVED, ALL})


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("allowed_vendors", "some", "must be all, or a list of vendor groups (all|approved_list|"),
        ("allowed_vendors", ["hipaa_complaint"], "must be all, or a list of vendor groups"),
        ("allowed_vendors", [["all"]], "must be all, or a list of vendor groups"),
        ("can_cache", "no", "must be true or false, not 'no'"),
        ("encryption_required", 1, "must be true or false, not 1"),
        ("restrictions", "need_to_know", "must be a list of non-empty strings"),
        ("restrictions", [""], "must be a list of non-empty strings"),
        ("retention_days", 0, f"must be an integer in [1, {MAX_RETENTION_DAYS:,}], not 0"),
        ("retention_days", MAX_RETENTION_DAYS + 1, "must be an integer in [1, "),
        ("retention_days", 30.5, "must be an integer"),
    ],
)
def test_bad_handling_is_named_with_its_path(
    tmp_path: Path, field: str, value: Any, rule: str
) -> None:
    spec = read_spec(SEED)
    spec["classifications"]["class.pii"][field] = value
    message = FILES.error_at(FILES.write(tmp_path, spec), f"classifications.class.pii.{field}")
    assert rule in message


def test_bad_handling_of_several_classes_is_reported_at_once(tmp_path: Path) -> None:
    spec = read_spec(SEED)
    spec["classifications"]["class.pii"]["can_cache"] = "no"
    spec["classifications"]["class.phi"]["allowed_vendors"] = "hipaa"
    file = FILES.write(tmp_path, spec)
    paths = [line.split(": ")[1] for line in FILES.errors(file).splitlines()]
    assert paths == [
        "classifications.class.pii.can_cache",
        "classifications.class.phi.allowed_vendors",
    ]
