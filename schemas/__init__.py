"""guardstream's wire format: pydantic v2 models of every record on every topic.

The single source of truth (DESIGN §1): JSON Schema files in schemas/json are generated from
these models (`python -m schemas.jsonschema --write`) and a test fails when they drift.
"""

from schemas.alerts import FINGERPRINT_HEX_CHARS, Alert, AlertStatus, alert_fingerprint
from schemas.audit import GENESIS_HASH, AuditRecord, AuditSource, canonical_bytes
from schemas.base import WIRE_CONFIG, WireModel
from schemas.codec import PayloadTooLarge, decode, encode, max_bytes_for
from schemas.control import ControlCommand, ControlKind
from schemas.dead_letter import (
    DeadLetter,
    DeadLetterKind,
    describe_validation_error,
    error_fields_of,
    error_kind_for,
)
from schemas.events import (
    INPUT_EVENT_TYPES,
    CostEvent,
    EventBase,
    InputEvent,
    InvocationStatus,
    LatencyEvent,
    LatencyKind,
    ScopedEvent,
    ToolInvocation,
)
from schemas.policy import PolicyDocument, PolicyKind, policy_version
from schemas.state import (
    BreakerState,
    BudgetAction,
    BudgetPeriod,
    BudgetState,
    CircuitState,
    SloState,
)
from schemas.types import (
    Attributes,
    Duration,
    EventTime,
    Evidence,
    Fraction,
    HexDigest,
    Identifier,
    JsonObject,
    MoneyTotalUSD,
    MoneyUSD,
    PolicyVersion,
    Severity,
    ShortStr,
    SignedMoneyUSD,
    Text,
    TokenCount,
)

__all__ = [
    "FINGERPRINT_HEX_CHARS",
    "GENESIS_HASH",
    "INPUT_EVENT_TYPES",
    "WIRE_CONFIG",
    "Alert",
    "AlertStatus",
    "Attributes",
    "AuditRecord",
    "AuditSource",
    "BreakerState",
    "BudgetAction",
    "BudgetPeriod",
    "BudgetState",
    "CircuitState",
    "ControlCommand",
    "ControlKind",
    "CostEvent",
    "DeadLetter",
    "DeadLetterKind",
    "Duration",
    "EventBase",
    "EventTime",
    "Evidence",
    "Fraction",
    "HexDigest",
    "Identifier",
    "InputEvent",
    "InvocationStatus",
    "JsonObject",
    "LatencyEvent",
    "LatencyKind",
    "MoneyTotalUSD",
    "MoneyUSD",
    "PayloadTooLarge",
    "PolicyDocument",
    "PolicyKind",
    "PolicyVersion",
    "ScopedEvent",
    "Severity",
    "ShortStr",
    "SignedMoneyUSD",
    "SloState",
    "Text",
    "TokenCount",
    "ToolInvocation",
    "WireModel",
    "alert_fingerprint",
    "canonical_bytes",
    "decode",
    "describe_validation_error",
    "encode",
    "error_fields_of",
    "error_kind_for",
    "max_bytes_for",
    "policy_version",
]
