"""Runtime settings: one typed object read from the environment (prefix ``GUARDSTREAM_``).

Precedence is environment variable > policy file > mode default (DESIGN §5). This module owns
the first and last of those; policy files are applied on top by the policy loader.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.errors import ConfigError
from workers.kernels.key_cap import (
    DEFAULT_MAX_BREAKER_KEYS,
    DEFAULT_MAX_BUDGET_KEYS,
    DEFAULT_MAX_SLO_KEYS,
    KeyCaps,
)


class Mode(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class AuditLevel(StrEnum):
    """What goes into the audit trail besides decisions (issue 6; the seeds' audit_level)."""

    MINIMAL = "minimal"
    """Decisions only (and dead-lettered input, which is a decision too)."""
    STANDARD = "standard"
    """Decisions plus failed and rejected invocations."""
    FORENSIC = "forensic"
    """Every input event, clock ticks included: what exact replay from the trail needs."""


class ProcessingGuarantee(StrEnum):
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


# What each mode implies when neither the environment nor a policy file says otherwise.
MODE_DEFAULTS: dict[Mode, dict[str, Any]] = {
    Mode.DEVELOPMENT: {
        "processing_guarantee": ProcessingGuarantee.AT_LEAST_ONCE,
        "log_format": "text",
        "log_level": "INFO",
        "audit_level": AuditLevel.MINIMAL,
        # Key caps per worker (issue 11): a laptop's share of memory.
        "max_breaker_keys": 20_000,
        "max_budget_keys": 50_000,
        "max_slo_keys": 10_000,
    },
    Mode.STAGING: {
        "processing_guarantee": ProcessingGuarantee.AT_LEAST_ONCE,
        "log_format": "json",
        "log_level": "INFO",
        "audit_level": AuditLevel.STANDARD,
        "max_breaker_keys": DEFAULT_MAX_BREAKER_KEYS,
        "max_budget_keys": DEFAULT_MAX_BUDGET_KEYS,
        "max_slo_keys": DEFAULT_MAX_SLO_KEYS,
    },
    Mode.PRODUCTION: {
        "processing_guarantee": ProcessingGuarantee.EXACTLY_ONCE,
        "log_format": "json",
        "log_level": "WARNING",
        # The seeds' regulated mode: a complete trail, replayable decision by decision.
        "audit_level": AuditLevel.FORENSIC,
        "max_breaker_keys": DEFAULT_MAX_BREAKER_KEYS,
        "max_budget_keys": DEFAULT_MAX_BUDGET_KEYS,
        "max_slo_keys": DEFAULT_MAX_SLO_KEYS,
    },
}


class Settings(BaseSettings):
    """Everything a guardstream process needs to connect and behave; immutable once built."""

    model_config = SettingsConfigDict(env_prefix="GUARDSTREAM_", frozen=True, extra="ignore")

    mode: Mode = Mode.DEVELOPMENT
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    topic_prefix: str = "guardstream."
    app_id: str = "guardstream"
    # None means "the mode decides" (see MODE_DEFAULTS).
    processing_guarantee: ProcessingGuarantee | None = None
    log_format: str | None = None
    log_level: str | None = None
    audit_level: AuditLevel | None = None

    # Kafka security is configuration, not code (DESIGN §10).
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None

    # Ingest.
    dedup_horizon_s: float = Field(default=3600.0, gt=0)
    dedup_max_ids_per_partition: int = Field(default=1_000_000, gt=0)
    """Event ids remembered per input partition (oldest forgotten first): bounds memory."""
    input_partitions: int = Field(default=4, ge=1)
    retention_days_inputs: int = Field(default=7, ge=1)

    # Kernels.
    policy_dir: str | None = None
    """Policy directory or file (configs/); None: the mode's built-in defaults."""
    clock_interval_s: float = Field(default=1.0, ge=0)
    """How often a worker publishes a clock tick to each input partition it owns, so
    time-driven transitions happen with no traffic (0: never; ticks then come from producers)."""

    # Key caps (issue 11): producers choose vendor, tool, user and team, so the states keyed
    # by them are capped per worker, each partition's engine holding an even share. Past a
    # cap new keys go to an overflow state (idle breakers are evicted first) and a
    # `cardinality_limit` alert fires. None: the mode decides (see MODE_DEFAULTS).
    max_breaker_keys: int | None = Field(default=None, ge=1)
    """Circuit breakers (vendor/tool keys) per worker."""
    max_budget_keys: int | None = Field(default=None, ge=1)
    """Ledgers of split budgets (one per user, team... value; with their rate limits)."""
    max_slo_keys: int | None = Field(default=None, ge=1)
    """SLO, objective and SLA trackers of targets with group_by (one per label set)."""

    # Failover: a member that stops heartbeating (a killed worker) leaves the group after this
    # long and its partitions move (Faust's default is 60 s; 6 s is the broker's minimum).
    session_timeout_s: float = Field(default=10.0, ge=6.0)
    # Exactly once: a batch's outputs (alerts included) become visible when its transaction
    # commits, so this bounds the latency an exactly-once worker adds to an alert.
    commit_interval_s: float = Field(default=1.0, gt=0)
    # Exactly once: the broker aborts a transaction open this long and fences its producer (the
    # worker then gives its partitions up and rejoins). Transactions last one commit interval,
    # so this is the longest stall (GC, CPU starvation) a transaction survives.
    transaction_timeout_s: float = Field(default=60.0, ge=10.0, le=900.0)
    # Records a partition processes between two snapshots of its cores (`shell.snapshots`;
    # production mode: restore = the latest snapshot + the tail). 0: none are written. A
    # routed record sums a key's second of one input batch and costs a restore ~2 ms of CPU
    # (bench.restore: 61 s for the 29,000 records of 1M events), hence its own interval.
    snapshot_every: int = Field(default=100_000, ge=0, le=100_000_000)
    snapshot_every_routed: int = Field(default=2_000, ge=0, le=100_000_000)

    # Live-state projection (`guardstream project`): Redis keeps the state topics' latest
    # records for gateways. A hash not updated for this long expires (0: never); longer than a
    # month, so a monthly budget halted early and idle since is not forgotten before its end.
    projection_ttl_s: float = Field(default=35 * 86_400.0, ge=0)
    projector_port: int = Field(default=6067, ge=0, le=65535)
    """The projector's Prometheus /metrics (0: none)."""

    # Alert delivery (`guardstream alerts forward`).
    alertmanager_url: str | None = None
    """Alertmanager's base URL, e.g. http://alertmanager:9093 (the forwarder posts to
    /api/v2/alerts)."""
    alert_resend_interval_s: float = Field(default=60.0, gt=0, le=3600)
    alert_give_up_after_s: float = Field(default=300.0, gt=0)
    alert_runbook_url: str | None = None
    """Template of each alert's runbook link: {kind}, {fingerprint} and label names in braces."""
    alert_dashboard_url: str | None = None
    alert_generator_url: str | None = None
    """Where an alert links back to (the worker's status page)."""
    forwarder_port: int = Field(default=6068, ge=0, le=65535)
    """The forwarder's Prometheus /metrics (0: none)."""

    # Worker web server (health + Prometheus metrics).
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    data_dir: str = "/tmp/guardstream"

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_topic_safe(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError(f"topic prefix {value!r} may only contain [a-zA-Z0-9._-]")
        return value

    @cached_property
    def effective_guarantee(self) -> ProcessingGuarantee:
        return self.processing_guarantee or MODE_DEFAULTS[self.mode]["processing_guarantee"]

    @cached_property
    def effective_log_format(self) -> str:
        return self.log_format or MODE_DEFAULTS[self.mode]["log_format"]

    @cached_property
    def effective_log_level(self) -> str:
        return self.log_level or MODE_DEFAULTS[self.mode]["log_level"]

    @cached_property
    def effective_audit_level(self) -> AuditLevel:
        return self.audit_level or MODE_DEFAULTS[self.mode]["audit_level"]

    @cached_property
    def key_caps(self) -> KeyCaps:
        """How many keys of each kind a worker holds (the setting, else the mode's)."""
        defaults = MODE_DEFAULTS[self.mode]
        return KeyCaps(
            breakers=self.max_breaker_keys or defaults["max_breaker_keys"],
            budgets=self.max_budget_keys or defaults["max_budget_keys"],
            slos=self.max_slo_keys or defaults["max_slo_keys"],
        )

    def kafka_client_options(self) -> dict[str, Any]:
        """Connection options shared by every aiokafka client we create."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL"):
            options["ssl_context"] = self.kafka_ssl_context()
        return options

    def kafka_ssl_context(self) -> ssl.SSLContext:
        """The TLS context for SSL / SASL_SSL: the system's CAs, or GUARDSTREAM_KAFKA_SSL_CAFILE's.
        A CA file that cannot be loaded is a ConfigError naming the variable (exit 2), not a
        traceback from deep inside the first client a command creates."""
        from aiokafka.helpers import create_ssl_context

        try:
            context: ssl.SSLContext = create_ssl_context(cafile=self.kafka_ssl_cafile)
        except OSError as exc:  # ssl.SSLError (not a PEM file of certificates) is one too
            why = exc.strerror or str(exc)
            raise ConfigError(
                f"GUARDSTREAM_KAFKA_SSL_CAFILE={self.kafka_ssl_cafile}: cannot load the CA file "
                f"({why}); {self.kafka_security_protocol} needs it to be a readable PEM file of "
                "the CA certificates that signed the brokers' certificates"
            ) from None
        return context
