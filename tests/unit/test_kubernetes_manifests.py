"""deploy/kubernetes: every manifest validates against the Kubernetes JSON schemas (strict:
an unknown field is an error), and the deployment means what the README says: the workers'
probes on /health, a disruption budget over the workers, singletons that never run twice,
settings only from the ConfigMap and secrets only from the Secret, every container running a
real guardstream command, and settings names guardstream reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from workers.cli.main import cli
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    found: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        found += [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def containers() -> list[dict[str, Any]]:
    pods = [
        d["spec"]["template"]["spec"] for d in documents() if d["kind"] in ("Deployment", "Job")
    ]
    return [c for pod in pods for c in pod["containers"]]


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_every_manifest_validates_against_the_kubernetes_schemas(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_workers_are_probed_on_health_and_covered_by_a_disruption_budget() -> None:
    worker = by_kind("Deployment")["guardstream-worker"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert {"name": "http", "containerPort": 6066} in container["ports"]
    budget = by_kind("PodDisruptionBudget")["guardstream-worker"]
    assert budget["spec"]["selector"] == worker["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] == 1


def test_singletons_never_run_twice() -> None:
    deployments = by_kind("Deployment")
    for name in ("guardstream-cascade", "guardstream-projector", "guardstream-forwarder"):
        spec = deployments[name]["spec"]
        assert (spec["replicas"], spec["strategy"]["type"]) == (1, "Recreate"), name


def test_settings_come_from_the_configmap_and_secrets_from_the_secret() -> None:
    settings = by_kind("ConfigMap")["guardstream-settings"]["data"]
    secrets = by_kind("Secret")["guardstream-secrets"]["stringData"]
    known = {f"GUARDSTREAM_{name.upper()}" for name in Settings.model_fields}
    assert set(settings) | set(secrets) <= known
    assert not {k for k in settings if "PASSWORD" in k or k == "GUARDSTREAM_REDIS_URL"}
    for container in containers():
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"guardstream-settings", "guardstream-secrets"}
        assert {e["name"] for e in container.get("env", [])} <= known


def test_every_container_runs_a_real_guardstream_command() -> None:
    for container in containers():
        command: click.Command = cli
        for word in container["args"]:
            if word.startswith("-"):
                break
            assert isinstance(command, click.Group), container["args"]
            command = command.commands[word]
        assert not isinstance(command, click.Group), f"{container['args']} names a group"
