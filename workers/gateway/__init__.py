"""The gateway client (issue 13): may this call to a vendor's tool go out now?

Importable without Faust or aiokafka (redis, orjson, pydantic and guardstream's schemas and
pure modules only), sync and async. `GatewayClient.check()` / `AsyncGatewayClient.check()`
read the live-state projection (`workers.projection`) in one Redis round trip, or from an
in-process cache the projection's change notifications keep true, and return a `Verdict`
(`workers.gateway.verdict` says how it is decided). `report()` builds the tool-invocation
event for a call, validated as `guardstream publish` validates (`workers.gateway.report`).
"""

from workers.gateway.client import AsyncGatewayClient, GatewayClient
from workers.gateway.core import GatewaySettings
from workers.gateway.report import Report, report, send_report
from workers.gateway.verdict import (
    Decision,
    FailureMode,
    Reason,
    ReasonKind,
    Source,
    Verdict,
)

__all__ = [
    "AsyncGatewayClient",
    "Decision",
    "FailureMode",
    "GatewayClient",
    "GatewaySettings",
    "Reason",
    "ReasonKind",
    "Report",
    "Source",
    "Verdict",
    "report",
    "send_report",
]
