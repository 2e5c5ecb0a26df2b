"""Policy changes in the audit trail (workers.audit.policy_trail): what a starting worker
records, and the policy set a replay rebuilds from the newest record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.policy import PolicyKind
from schemas.types import Severity
from tests.support.policy_files import CONFIGS
from workers.audit.chain import AuditChain
from workers.audit.policy_trail import (
    KINDS,
    POLICY_CHAIN,
    POLICY_CHANGED,
    PolicyChange,
    policy_changes,
    recorded_policies,
    spec_changes,
)
from workers.audit.sealing import seal_masked
from workers.errors import ConfigError
from workers.masking.masker import default_masker
from workers.policies.policy_set import PolicySet, default_policies, load_policies
from workers.settings import Mode

BUDGET = """
budgets:
  bud.team.research:
    scope: {team: research}
    period: daily
    limit_usd: %s
"""


def budgets_dir(tmp_path: Path, limit: str, *, extra: str = "") -> Path:
    directory = tmp_path / f"policies-{limit}-{len(extra)}"
    directory.mkdir()
    (directory / "budgets.yaml").write_text(BUDGET % limit + extra)
    return directory


def sealed(changes: list[PolicyChange]) -> list[dict[str, Any]]:
    """The payloads as they reach the audit topic (masked, then read back as JSON)."""
    chain = AuditChain(POLICY_CHAIN)
    records = [
        record
        for change in changes
        for record in seal_masked(
            chain,
            default_masker(),
            POLICY_CHANGED,
            ts_ms=0,
            severity=Severity.INFO,
            policy_version=change.version,
            payload=change.payload,
        )
    ]
    changed = [r for r in records if r.event_type == POLICY_CHANGED]
    assert len(changed) == len(changes)  # and an aud.data.sensitive after any masked one
    return [record.model_dump(mode="json")["payload"] for record in changed]


def test_a_first_start_records_every_kind_with_no_previous_version() -> None:
    policies = default_policies(Mode.PRODUCTION)
    changes = policy_changes(None, policies, Mode.PRODUCTION)
    assert [change.kind for change in changes] == list(KINDS)
    for change in changes:
        assert change.payload["previous_version"] is None
        assert change.payload["version"] == change.version
        assert change.payload["mode"] == "production"
        assert set(change.payload["documents"]) == {str(kind) for kind in KINDS}
    assert changes[0].payload["changes"]  # the built-in breaker's entries, all added
    assert all(line.startswith("added ") for line in changes[0].payload["changes"])


def test_the_same_policies_again_record_nothing() -> None:
    policies = load_policies(CONFIGS, Mode.PRODUCTION)
    [*_, newest] = sealed(policy_changes(None, policies, Mode.PRODUCTION))
    assert policy_changes(newest, policies, Mode.PRODUCTION) == []


def test_a_changed_budget_is_one_record_naming_what_changed(tmp_path: Path) -> None:
    before = load_policies(budgets_dir(tmp_path, "300"), Mode.PRODUCTION)
    first = policy_changes(None, before, Mode.PRODUCTION)
    assert first[1].payload["changes"] == ["added budgets.bud.team.research"]
    [*_, newest] = sealed(first)
    extra = "  bud.team.search:\n    scope: {team: search}\n    period: daily\n    limit_usd: 50\n"
    after = load_policies(budgets_dir(tmp_path, "100", extra=extra), Mode.PRODUCTION)
    [change] = policy_changes(newest, after, Mode.PRODUCTION)
    assert change.kind is PolicyKind.BUDGETS
    assert change.payload["previous_version"] == before.budgets.version
    assert change.payload["version"] == after.budgets.version
    assert change.payload["changes"] == [
        "changed budgets.bud.team.research",
        "added budgets.bud.team.search",
    ]
    assert "removed budgets.bud.team.search" in spec_changes(
        after.budgets.document.spec, before.budgets.document.spec
    )


@pytest.mark.parametrize("mode", list(Mode))
def test_a_replay_rebuilds_the_recorded_set_exactly(mode: Mode) -> None:
    policies = load_policies(CONFIGS, mode)
    [*_, newest] = sealed(policy_changes(None, policies, mode))
    recorded = recorded_policies(newest)
    assert recorded.masked == ("budgets",)  # its notify addresses, masked as emails
    rebuilt = recorded.policies
    assert _versions(rebuilt) == _versions(policies)
    assert rebuilt.budgets.budgets.keys() == policies.budgets.budgets.keys()
    for field in ("breakers", "rules", "key", "disabled", "default_breaker_id"):
        assert getattr(rebuilt.breakers, field) == getattr(policies.breakers, field)
    assert rebuilt.slos == policies.slos


def test_an_unmasked_set_is_rebuilt_as_is_and_a_missing_document_is_refused() -> None:
    policies = default_policies(Mode.DEVELOPMENT)
    [*_, newest] = sealed(policy_changes(None, policies, Mode.DEVELOPMENT))
    recorded = recorded_policies(newest)
    assert recorded.masked == ()
    assert _versions(recorded.policies) == _versions(policies)
    broken = {**newest, "documents": dict(newest["documents"])}
    broken["documents"]["budgets"] = {**broken["documents"]["budgets"], "spec": "nothing"}
    with pytest.raises(ConfigError, match="budgets document has no spec"):
        recorded_policies(broken)
    broken["documents"]["budgets"] = newest["documents"]["budgets"]
    del broken["documents"]["slos"]
    with pytest.raises(ConfigError, match="no slos document"):
        recorded_policies(broken)


specs = st.dictionaries(
    st.sampled_from(["budgets", "slos", "defaults", "version"]),
    st.one_of(
        st.integers(0, 3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), max_size=3),
    ),
    max_size=4,
)


@given(specs, specs)
def test_spec_changes_are_empty_exactly_when_the_specs_are_equal(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    lines = spec_changes(before, after)
    assert (lines == []) == (before == after)
    assert len(lines) == len(set(lines))
    assert all(line.split(" ", 1)[0] in {"added", "removed", "changed"} for line in lines)


def _versions(policies: PolicySet) -> tuple[str, ...]:
    return (
        policies.breakers.version,
        policies.budgets.version,
        policies.slos.version,
        policies.classification.version,
        policies.audit.version,
    )
