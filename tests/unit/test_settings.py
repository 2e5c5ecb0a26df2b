"""Runtime settings (workers/settings.py): modes, precedence, validation and secrets."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from workers.errors import ConfigError
from workers.kernels.key_cap import KeyCaps
from workers.settings import MODE_DEFAULTS, AuditLevel, Mode, ProcessingGuarantee, Settings

PASSWORD = "s3cr3t-Pa55word-for-tests"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: the developer's or CI's GUARDSTREAM_* must not leak in."""
    for name in os.environ:
        if name.upper().startswith("GUARDSTREAM_"):
            monkeypatch.delenv(name)


# --- modes --------------------------------------------------------------------------------


def test_default_is_development_at_least_once_with_text_logs() -> None:
    settings = Settings()
    assert settings.mode is Mode.DEVELOPMENT
    assert settings.effective_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert settings.effective_log_format == "text"
    assert settings.effective_log_level == "INFO"


def test_production_defaults_to_exactly_once_and_json_logs() -> None:
    settings = Settings(mode=Mode.PRODUCTION)
    assert settings.processing_guarantee is None  # nothing set: the mode decides
    assert settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
    assert settings.effective_log_format == "json"
    assert settings.effective_log_level == "WARNING"


@pytest.mark.parametrize(
    ("mode", "guarantee", "log_format"),
    [
        ("development", ProcessingGuarantee.AT_LEAST_ONCE, "text"),
        ("staging", ProcessingGuarantee.AT_LEAST_ONCE, "json"),
        ("production", ProcessingGuarantee.EXACTLY_ONCE, "json"),
    ],
)
def test_mode_from_the_environment_chooses_the_defaults(
    monkeypatch: pytest.MonkeyPatch, mode: str, guarantee: ProcessingGuarantee, log_format: str
) -> None:
    monkeypatch.setenv("GUARDSTREAM_MODE", mode)
    settings = Settings()
    assert settings.mode == mode
    assert settings.effective_guarantee is guarantee
    assert settings.effective_log_format == log_format
    assert MODE_DEFAULTS[Mode(mode)]["processing_guarantee"] is guarantee


def test_every_mode_has_every_default() -> None:
    assert set(MODE_DEFAULTS) == set(Mode)
    for defaults in MODE_DEFAULTS.values():
        assert set(defaults) == {
            "processing_guarantee",
            "log_format",
            "log_level",
            "audit_level",
            "max_breaker_keys",
            "max_budget_keys",
            "max_slo_keys",
        }


def test_key_caps_follow_the_mode_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(mode=Mode.DEVELOPMENT).key_caps == KeyCaps(20_000, 50_000, 10_000)
    assert Settings(mode=Mode.PRODUCTION).key_caps == KeyCaps()
    monkeypatch.setenv("GUARDSTREAM_MAX_BUDGET_KEYS", "7")
    assert Settings(mode=Mode.PRODUCTION).key_caps == KeyCaps(budgets=7)
    monkeypatch.setenv("GUARDSTREAM_MAX_SLO_KEYS", "0")
    with pytest.raises(ValidationError, match="max_slo_keys"):
        Settings()


def test_the_audit_level_follows_the_mode_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    levels = {mode: Settings(mode=mode).effective_audit_level for mode in Mode}
    assert levels == {
        Mode.DEVELOPMENT: AuditLevel.MINIMAL,
        Mode.STAGING: AuditLevel.STANDARD,
        Mode.PRODUCTION: AuditLevel.FORENSIC,
    }
    monkeypatch.setenv("GUARDSTREAM_AUDIT_LEVEL", "standard")
    assert Settings(mode=Mode.PRODUCTION).effective_audit_level is AuditLevel.STANDARD


def test_environment_overrides_the_mode_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_MODE", "production")
    monkeypatch.setenv("GUARDSTREAM_PROCESSING_GUARANTEE", "at_least_once")
    monkeypatch.setenv("GUARDSTREAM_LOG_FORMAT", "text")
    settings = Settings()
    assert settings.mode is Mode.PRODUCTION
    assert settings.effective_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert settings.effective_log_format == "text"
    assert settings.effective_log_level == "WARNING"  # not overridden: still the mode's


def test_environment_can_ask_development_for_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUARDSTREAM_PROCESSING_GUARANTEE", "exactly_once")
    assert Settings().effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GUARDSTREAM_MODE", "prod"),
        ("GUARDSTREAM_PROCESSING_GUARANTEE", "exactly-twice"),
        ("GUARDSTREAM_WEB_PORT", "70000"),
        ("GUARDSTREAM_DEDUP_HORIZON_S", "0"),
        ("GUARDSTREAM_INPUT_PARTITIONS", "0"),
    ],
)
def test_bad_environment_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    field = variable.removeprefix("GUARDSTREAM_").lower()
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.mode = Mode.PRODUCTION  # type: ignore[misc]


# --- topic prefix -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["guardstream.", "acme-prod_gs.", "GS.v2.", ""])
def test_topic_safe_prefixes_are_accepted(prefix: str) -> None:
    assert Settings(topic_prefix=prefix).topic_prefix == prefix


@pytest.mark.parametrize("prefix", ["guard stream.", "tenant/a.", "gs:", "gardé.", "a*"])
def test_prefixes_kafka_cannot_name_topics_with_are_rejected(prefix: str) -> None:
    with pytest.raises(ValidationError, match=r"may only contain \[a-zA-Z0-9\._-\]") as raised:
        Settings(topic_prefix=prefix)
    assert repr(prefix) in str(raised.value)


def test_bad_prefix_from_the_environment_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_TOPIC_PREFIX", "team a.")
    with pytest.raises(ValidationError, match=r"topic prefix 'team a\.'"):
        Settings()


# --- Kafka client options and secrets ------------------------------------------------------


def test_plaintext_options_carry_no_credentials() -> None:
    settings = Settings(
        kafka_bootstrap="k1:9092,k2:9092",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr(PASSWORD),
    )
    assert settings.kafka_client_options() == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_ssl_options_carry_a_context_but_no_sasl() -> None:
    options = Settings(kafka_security_protocol="SSL").kafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "SSL"}


def test_sasl_plaintext_options_carry_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SASL_USERNAME", "svc-guardstream")
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SASL_PASSWORD", PASSWORD)
    assert Settings().kafka_client_options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc-guardstream",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_ssl_options_carry_credentials_and_a_context() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr(PASSWORD),
    )
    options = settings.kafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": PASSWORD,
    }


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "No such file or directory"),
        ("not a certificate\n", "no certificate"),
    ],
)
def test_a_ca_file_that_cannot_be_loaded_is_a_config_error_naming_the_variable(
    tmp_path: Path, content: str | None, why: str
) -> None:
    cafile = tmp_path / "ca.pem"
    if content is not None:
        cafile.write_text(content)
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=str(cafile))
    with pytest.raises(ConfigError) as info:
        settings.kafka_client_options()
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"GUARDSTREAM_KAFKA_SSL_CAFILE={cafile}: cannot load")
    assert why in str(info.value)


def test_secrets_never_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("GUARDSTREAM_REDIS_URL", f"rediss://:{PASSWORD}-redis@cache:6380/0")
    settings = Settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in shown
    assert "**********" in repr(settings)
    # The values are still there for the code that needs them.
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    assert PASSWORD in settings.redis_url.get_secret_value()
