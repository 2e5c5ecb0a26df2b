"""The Faust and Kafka client settings of a worker app, from guardstream's `Settings`."""

from __future__ import annotations

from typing import Any

import faust
from faust.auth import SASLCredentials, SSLCredentials

from workers.settings import ProcessingGuarantee, Settings

# A fetch returns up to this many records per call; batches are per partition, so agents see
# at most this many per event. Large enough to amortise the hand-off, small enough to keep
# one batch's latency low.
MAX_POLL_RECORDS = 10_000
# Bigger fetch responses mean fewer round trips through Faust's consumer thread.
MAX_FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024


def consumer_lag(app: faust.App) -> dict[tuple[str, int], int]:
    monitor = app.monitor
    if monitor is None:
        return {}
    lag: dict[tuple[str, int], int] = {}
    for tp, end in (monitor.tp_end_offsets or {}).items():
        read = (monitor.tp_read_offsets or {}).get(tp)
        if read is not None:
            lag[(tp.topic, tp.partition)] = max(end - read - 1, 0)
    return lag


def faust_settings(settings: Settings) -> dict[str, Any]:
    exactly_once = settings.effective_guarantee is ProcessingGuarantee.EXACTLY_ONCE
    conf: dict[str, Any] = {
        "broker": [f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        "processing_guarantee": "exactly_once" if exactly_once else "at_least_once",
        "store": "memory://",
        "datadir": settings.data_dir,
        "topic_partitions": settings.input_partitions,
        # guardstream creates and verifies its topics from the catalog (topics/catalog.py).
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        "broker_max_poll_records": MAX_POLL_RECORDS,
        "consumer_max_fetch_size": MAX_FETCH_BYTES_PER_PARTITION,
        "web_enabled": settings.web_port != 0,
        "web_port": settings.web_port or 6066,  # Faust validates it even when disabled
        "web_bind": settings.web_host,
        "web_in_thread": False,
        "producer_acks": -1,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_commit_interval": settings.commit_interval_s,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_s / 3),
    }
    credentials = _credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    return conf


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    # The TLS context is built in one place (Settings) for Faust and the plain aiokafka clients.
    ssl_context = settings.kafka_client_options().get("ssl_context")
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context,
        )
    return SSLCredentials(context=ssl_context)
