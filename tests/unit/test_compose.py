"""docker-compose.yml and the Dockerfile (DESIGN §2): the stack for users with Docker.

No Docker engine runs here, so the files are checked by structure: the services and their
start order, the broker settings exactly-once needs, and that every command the stack runs is
a real ``guardstream`` command. ``docker compose config`` runs too when the plugin exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from workers.cli.main import cli
from workers.simulate.scenario import Outage, SpendSpike

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
POM = ROOT / "devstack" / "pom.xml"

# Services that run the guardstream image (ENTRYPOINT guardstream + their `command`).
IMAGE_SERVICES = ("topics", "worker", "simulator")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose would pass it with nothing set on the host."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {
        key: _INTERPOLATION.sub(lambda m: m.group("default") or "", str(value))
        for key, value in raw.items()
    }


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _instruction(name: str) -> list[str]:
    return [rest for keyword, rest in _dockerfile_instructions() if keyword == name]


def _entrypoint() -> list[str]:
    (entrypoint,) = _instruction("ENTRYPOINT")
    return list(json.loads(entrypoint))


def _service_argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "use exec form so arguments are not re-split by a shell"
    return [*_entrypoint(), *(str(arg) for arg in command)]


# --- services and start order --------------------------------------------------------------


def test_the_stack_has_every_process_of_a_deployment(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert set(services) == {
        "kafka",
        "redis",
        "topics",
        "worker",
        "projector",
        "cascade",
        "alertmanager",
        "forwarder",
        "simulator",
    }
    assert compose["name"] == "guardstream"  # not the checkout directory's name


def test_worker_waits_for_healthy_broker_and_redis_and_created_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    depends_on = services["worker"]["depends_on"]
    assert depends_on == {
        "kafka": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "topics": {"condition": "service_completed_successfully"},
    }
    # service_healthy only waits for something when the dependency has a health check.
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_forwarder_posts_to_the_compose_alertmanager_with_the_repo_config(
    services: dict[str, dict[str, Any]],
) -> None:
    forwarder, alertmanager = services["forwarder"], services["alertmanager"]
    assert _service_argv(forwarder)[-2:] == ["alerts", "forward"]
    assert forwarder["environment"]["GUARDSTREAM_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    assert forwarder["environment"]["GUARDSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    source = alertmanager["volumes"][0].split(":")[0]
    assert (ROOT / source).resolve() == ROOT / "configs" / "alertmanager.yml"
    assert "--cluster.listen-address=" in alertmanager["command"]


def test_topics_is_one_shot_and_waits_for_the_broker(services: dict[str, dict[str, Any]]) -> None:
    topics = services["topics"]
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    # A restarting one-shot would never be "completed", and the worker would never start.
    assert topics.get("restart", "no") == "no"
    assert services["worker"]["restart"] == "unless-stopped"


def test_simulator_runs_only_in_its_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["simulator"]["profiles"] == ["simulator"]
    in_profiles = {name for name, service in services.items() if "profiles" in service}
    assert in_profiles == {"simulator"}, "plain `docker compose up` must start the rest"


def test_simulator_injects_an_outage_and_a_spend_spike(
    services: dict[str, dict[str, Any]],
) -> None:
    argv = _service_argv(services["simulator"])
    assert argv[:2] == ["guardstream", "simulate"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert float(options["--rate"]) == 200.0
    assert Outage.parse(options["--outage"]) == Outage("openai", 60.0, 60.0)
    assert SpendSpike.parse(options["--spike"]) == SpendSpike("research", 120.0, 60.0, 20.0)


# --- broker -------------------------------------------------------------------------------


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["kafka"])
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert set(env["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"


def test_kafka_internal_topics_fit_one_broker_for_exactly_once(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _environment(services["kafka"])
    # With the default 3 replicas the transaction coordinator never becomes available on a
    # single broker, and exactly-once (production mode) producers hang on init.
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_broker_is_the_version_the_tests_run(services: dict[str, dict[str, Any]]) -> None:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text("utf-8"))
    assert match is not None
    assert services["kafka"]["image"] == f"apache/kafka:{match.group(1)}"


def test_worker_talks_to_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    kafka_env = _environment(services["kafka"])
    advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://")
    for name in IMAGE_SERVICES:
        env = _environment(services[name])
        assert env["GUARDSTREAM_KAFKA_BOOTSTRAP"] == advertised, name
        assert env["GUARDSTREAM_REDIS_URL"] == "redis://redis:6379/0", name
    assert services["worker"]["environment"]["GUARDSTREAM_MODE"] == (
        "${GUARDSTREAM_MODE:-production}"
    )
    assert services["worker"]["ports"] == ["6066:6066"]
    assert services["worker"].get("build") == "."


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_runs_the_guardstream_console_script() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert _entrypoint() == ["guardstream"]
    assert "guardstream" in pyproject["project"]["scripts"]
    assert [json.loads(cmd) for cmd in _instruction("CMD")] == [["worker"]]
    assert _instruction("FROM") == ["python:3.11-slim"]


def test_dockerfile_runs_unprivileged_and_checks_health() -> None:
    users = _instruction("USER")
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")
    assert _instruction("EXPOSE") == ["6066"]
    (healthcheck,) = _instruction("HEALTHCHECK")
    assert "127.0.0.1:" in healthcheck
    assert "/health" in healthcheck
    assert "'6066'" in healthcheck or ":6066/" in healthcheck
    env = " ".join(_instruction("ENV"))
    assert "GUARDSTREAM_MODE=production" in env
    assert "GUARDSTREAM_WEB_HOST=0.0.0.0" in env, "bound to loopback, the port is unreachable"


def test_dockerfile_copies_only_paths_that_exist() -> None:
    sources = [
        source
        for line in _instruction("COPY")
        if not line.startswith("--from")
        for source in line.split()[:-1]
    ]
    assert {"pyproject.toml", "schemas/", "topics/", "workers/"} <= set(sources)
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []


# --- commands -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_SERVICES)
def test_every_compose_command_is_a_real_cli_command(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    argv = _service_argv(services[name])
    assert argv[0] == "guardstream"
    # The service's own environment goes in too: the CLI builds Settings from it first.
    result = CliRunner().invoke(cli, [*argv[1:], "--help"], env=_environment(services[name]))
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_the_cli_check_rejects_a_command_that_does_not_exist() -> None:
    result = CliRunner().invoke(cli, ["topics", "destroy", "--help"])
    assert result.exit_code == 2
    assert "No such command" in result.output


# --- docker compose itself ----------------------------------------------------------------


def _compose_plugin() -> str | None:
    """Why `docker compose` cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        first_line = (probe.stderr or probe.stdout).strip().splitlines()[:1]
        return f"`docker compose version` failed: {' '.join(first_line)}"
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    reason = _compose_plugin()
    if reason is not None:
        pytest.skip(reason)
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_image_ships_the_example_policies_and_points_the_worker_at_them() -> None:
    assert "configs/ /etc/guardstream/" in _instruction("COPY")
    assert "GUARDSTREAM_POLICY_DIR=/etc/guardstream" in " ".join(_instruction("ENV"))
    assert (ROOT / "configs" / "breakers.yaml").is_file()
