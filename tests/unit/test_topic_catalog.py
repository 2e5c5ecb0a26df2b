"""The topic catalog (DESIGN §3) and the pure judgement of an existing topic against it."""

from __future__ import annotations

import pytest

from topics.admin import TopicAction, TopicStatus, compare
from topics.catalog import (
    DAY_MS,
    INPUT_TOPICS,
    Cleanup,
    TopicCatalog,
    TopicName,
    TopicSpec,
)

# DESIGN §3, row by row: logical name -> (value model, cleanup policy, retention in days;
# None = no retention.ms set because the topic is compacted).
DESIGN_TOPICS: dict[str, tuple[str, Cleanup, int | None]] = {
    "tool-invocations": ("ToolInvocation", Cleanup.DELETE, 7),
    "cost-events": ("CostEvent", Cleanup.DELETE, 7),
    "latency-events": ("LatencyEvent", Cleanup.DELETE, 7),
    "policies": ("PolicyDocument", Cleanup.COMPACT, None),
    "alerts": ("Alert", Cleanup.DELETE, 30),
    "audit": ("AuditRecord", Cleanup.DELETE, 2555),
    "breaker-state": ("BreakerState", Cleanup.COMPACT, None),
    "budget-state": ("BudgetState", Cleanup.COMPACT, None),
    "slo-state": ("SloState | ObjectiveState | SlaState", Cleanup.COMPACT, None),
    # Not in DESIGN §3 (issue 13): the dependency cascade's decisions, one record per node.
    "dependency-state": ("DependencyState", Cleanup.COMPACT, None),
    "control": ("ControlCommand", Cleanup.DELETE, 7),
    "dead-letter": ("DeadLetter", Cleanup.DELETE, 30),
    # Not in DESIGN §3: internal, the cross-partition budget path of DESIGN §11.
    "budget-spend": ("BudgetSpend", Cleanup.DELETE, 7),
    "slo-counts": ("SloCounts", Cleanup.DELETE, 7),
    "snapshots": ("Snapshot", Cleanup.COMPACT, None),
}


def _by_logical_name(catalog: TopicCatalog) -> dict[str, TopicSpec]:
    # logical() is checked on its own below.
    return {str(catalog.logical(spec.name)): spec for spec in catalog.specs()}


# --- the catalog --------------------------------------------------------------------------


def test_catalog_has_exactly_the_design_topics() -> None:
    catalog = TopicCatalog()
    assert {str(name) for name in TopicName} == set(DESIGN_TOPICS)
    assert sorted(spec.name for spec in catalog.specs()) == sorted(
        f"guardstream.{name}" for name in DESIGN_TOPICS
    )


@pytest.mark.parametrize("logical", DESIGN_TOPICS)
def test_each_topic_has_the_design_value_cleanup_and_retention(logical: str) -> None:
    value, cleanup, retention_days = DESIGN_TOPICS[logical]
    spec = TopicCatalog().spec(TopicName(logical))
    assert spec.value == value
    assert spec.cleanup is cleanup
    config = spec.config()
    assert config["cleanup.policy"] == str(cleanup)
    if retention_days is None:
        assert spec.retention_ms is None
        assert "retention.ms" not in config  # compacted topics keep the latest value per key
    else:
        assert spec.retention_ms == retention_days * DAY_MS
        assert config["retention.ms"] == str(retention_days * DAY_MS)


def test_compacted_topics_are_the_state_policy_and_snapshot_topics() -> None:
    compacted = {
        str(name)
        for name, spec in _by_logical_name(TopicCatalog()).items()
        if spec.cleanup is Cleanup.COMPACT
    }
    assert compacted == {
        "policies",
        "breaker-state",
        "budget-state",
        "slo-state",
        "dependency-state",
        "snapshots",
    }


def test_input_topics_are_the_three_event_streams() -> None:
    assert [str(topic) for topic in INPUT_TOPICS] == [
        "tool-invocations",
        "cost-events",
        "latency-events",
    ]


def test_input_retention_and_partitions_are_configurable() -> None:
    catalog = TopicCatalog(input_retention_days=3, input_partitions=12)
    for topic in INPUT_TOPICS:
        spec = catalog.spec(topic)
        assert spec.retention_ms == 3 * DAY_MS
        assert spec.partitions == 12
    # Only the inputs follow input_retention_days.
    assert catalog.spec(TopicName.ALERTS).retention_ms == 30 * DAY_MS
    assert catalog.spec(TopicName.DEAD_LETTER).retention_ms == 30 * DAY_MS
    # Policies are one ordered stream: a single partition keeps changes in order.
    assert catalog.spec(TopicName.POLICIES).partitions == 1
    # So is the cascade's output: one writer, which sees every breaker.
    assert catalog.spec(TopicName.DEPENDENCY_STATE).partitions == 1


def test_audit_retention_defaults_to_seven_years_and_can_be_infinite() -> None:
    assert TopicCatalog().spec(TopicName.AUDIT).retention_ms == 2555 * 86_400_000
    forever = TopicCatalog(audit_retention_days=None).spec(TopicName.AUDIT)
    assert forever.retention_ms == -1
    assert forever.config()["retention.ms"] == "-1"
    assert TopicCatalog(audit_retention_days=90).spec(TopicName.AUDIT).retention_ms == (90 * DAY_MS)


def test_replication_applies_to_every_topic() -> None:
    assert {spec.replication for spec in TopicCatalog(replication=3).specs()} == {3}
    assert {spec.replication for spec in TopicCatalog().specs()} == {1}


@pytest.mark.parametrize("prefix", ["guardstream.", "acme-prod.gs.", ""])
def test_prefix_is_applied_and_logical_inverts_name(prefix: str) -> None:
    catalog = TopicCatalog(prefix=prefix)
    for topic in TopicName:
        physical = catalog.name(topic)
        assert physical == prefix + str(topic)
        assert catalog.logical(physical) is topic
    assert [spec.name for spec in catalog.specs()] == [catalog.name(t) for t in TopicName]


@pytest.mark.parametrize(
    "physical",
    [
        "other.tool-invocations",  # another deployment's prefix
        "guardstream.unknown-topic",  # our prefix, not our topic
        "tool-invocations",  # no prefix at all
        "guardstream.",  # the prefix alone
    ],
)
def test_logical_rejects_names_outside_the_catalog(physical: str) -> None:
    assert TopicCatalog().logical(physical) is None


# --- compare ------------------------------------------------------------------------------

SPEC = TopicSpec(
    name="guardstream.alerts",
    key="alert fingerprint",
    value="Alert",
    partitions=4,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
)
MATCHING = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}

# name -> (partitions, config, action, problems, notes)
COMPARE_CASES = {
    "identical": (4, MATCHING, TopicAction.OK, [], []),
    "unrelated settings are ignored": (
        4,
        {**MATCHING, "segment.bytes": "1024", "compression.type": "zstd"},
        TopicAction.OK,
        [],
        [],
    ),
    "partition count differs": (
        8,
        MATCHING,
        TopicAction.MISMATCH,
        ["guardstream.alerts: has 8 partitions, catalog says 4"],
        [],
    ),
    "compacted instead of deleted": (
        4,
        {**MATCHING, "cleanup.policy": "compact"},
        TopicAction.MISMATCH,
        ["guardstream.alerts: cleanup.policy='compact', catalog says 'delete'"],
        [],
    ),
    "cleanup policy unknown": (
        4,
        {"retention.ms": str(30 * DAY_MS)},
        TopicAction.MISMATCH,
        ["guardstream.alerts: cleanup.policy=None, catalog says 'delete'"],
        [],
    ),
    "both wrong": (
        1,
        {**MATCHING, "cleanup.policy": "compact,delete"},
        TopicAction.MISMATCH,
        [
            "guardstream.alerts: has 1 partitions, catalog says 4",
            "guardstream.alerts: cleanup.policy='compact,delete', catalog says 'delete'",
        ],
        [],
    ),
    "retention differs: an operator's choice, noted only": (
        4,
        {**MATCHING, "retention.ms": "86400000"},
        TopicAction.OK,
        [],
        [f"retention.ms='86400000' (catalog default '{30 * DAY_MS}')"],
    ),
}


@pytest.mark.parametrize(
    ("partitions", "config", "action", "problems", "notes"),
    COMPARE_CASES.values(),
    ids=COMPARE_CASES.keys(),
)
def test_compare(
    partitions: int,
    config: dict[str, str],
    action: TopicAction,
    problems: list[str],
    notes: list[str],
) -> None:
    status = compare(SPEC, partitions, config)
    assert isinstance(status, TopicStatus)
    assert status.name == "guardstream.alerts"
    assert status.action is action
    assert status.partitions == partitions
    assert status.problems == problems
    assert status.notes == notes


def test_compare_reports_only_the_settings_it_judges() -> None:
    status = compare(SPEC, 4, {**MATCHING, "segment.bytes": "1024", "min.insync.replicas": "1"})
    assert status.config == {**MATCHING, "min.insync.replicas": "1"}
    assert status.as_dict() == {
        "name": "guardstream.alerts",
        "action": "ok",
        "partitions": 4,
        "config": {**MATCHING, "min.insync.replicas": "1"},
        "problems": [],
        "notes": [],
    }


def test_compare_does_not_ask_for_retention_on_a_compacted_topic() -> None:
    spec = TopicCatalog().spec(TopicName.BREAKER_STATE)
    status = compare(spec, spec.partitions, {"cleanup.policy": "compact", "retention.ms": "1"})
    assert (status.action, status.problems, status.notes) == (TopicAction.OK, [], [])


def test_compare_judges_every_catalog_spec_against_its_own_config() -> None:
    for spec in TopicCatalog(audit_retention_days=None).specs():
        status = compare(spec, spec.partitions, spec.config())
        assert (status.action, status.problems, status.notes) == (TopicAction.OK, [], []), spec
