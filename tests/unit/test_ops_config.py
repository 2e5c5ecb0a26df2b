"""The operations files in deploy/: the Prometheus rules pass `promtool check rules` and their
unit tests (`promtool test rules`); the Grafana dashboard is valid JSON of a current schema
whose every query names only metrics guardstream exports (or the rules record)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import workers.metrics
from workers.simulate.through_gateway import GATEWAY_CHECKS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "guardstream-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "guardstream-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "guardstream-fleet.json"
_METRIC = re.compile(r"\bguardstream[a-zA-Z0-9_:]*")
_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")
_QUOTED = re.compile(r'"[^"]*"')


def metrics_in(expr: str) -> set[str]:
    """The guardstream series a PromQL expression reads (label values left out)."""
    return set(_METRIC.findall(_QUOTED.sub("", expr)))


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not installed: `make deps` installs Debian's prometheus"
    return path


def exported() -> set[str]:
    """Every series name the worker, projector and forwarder expose, and the recorded ones."""
    bases = {
        value
        for name, value in vars(workers.metrics).items()
        if name.isupper() and isinstance(value, str) and value.startswith("guardstream_")
    } | {GATEWAY_CHECKS}
    recorded = {rule["record"] for group in _rules()["groups"] for rule in group["rules"]
                if "record" in rule}  # fmt: skip
    return {base + suffix for base in bases for suffix in _SUFFIXES} | recorded


def _rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return loaded


@pytest.mark.parametrize(
    "command", [["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]]
)
def test_promtool_accepts_the_rules_and_their_tests(command: list[str]) -> None:
    result = subprocess.run(  # the test file names its rule file relative to its folder
        [promtool(), *command], cwd=RULES.parent, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_every_rule_reads_metrics_guardstream_exports() -> None:
    names = exported()
    for group in _rules()["groups"]:
        for rule in group["rules"]:
            used = metrics_in(rule["expr"])
            assert used <= names, f"{rule.get('record') or rule['alert']}: {used - names}"


def test_the_dashboard_queries_only_exported_metrics() -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] == "guardstream-fleet"
    names = exported()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = metrics_in(target["expr"])
            assert used, f"{panel['title']}: no guardstream metric in {target['expr']}"
            assert used <= names, f"{panel['title']}: {used - names}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
