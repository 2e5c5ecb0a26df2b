"""Input events: what producers publish to tool-invocations, cost-events and latency-events.

The hot path is `Model.model_validate_json(raw_bytes)`, which stays inside pydantic-core.
Python runs only twice per event: `_to_utc` on `ts` (see schemas.types) and the
`_keep_unknown_fields` after-validator, which returns at once unless the event carried unknown
top-level fields (DESIGN §4: "unknown fields kept in `attributes`"). Measured ~4.1-4.7 us per
typical 290-byte ToolInvocation against ~3.7 us for a plain pydantic model of the same shape and
~0.9 us for orjson.loads alone (timeit, best of 15 interleaved rounds, busy 2-core box).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Self

import orjson
from pydantic import (
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from schemas.base import WireModel
from schemas.limits import (
    MAX_ATTRIBUTE_KEY_LEN,
    MAX_ATTRIBUTE_VALUE_LEN,
    MAX_ATTRIBUTES,
    MAX_DURATION_MS,
    MAX_ID_LEN,
    MAX_JSON_DEPTH,
    MAX_TOKENS,
)
from schemas.types import Attributes, Identifier, InputEventTime, MoneyUSD, ShortStr


class InvocationStatus(StrEnum):
    """Outcome of one tool call as the producer saw it."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    REJECTED = "rejected"


class LatencyKind(StrEnum):
    """What a LatencyEvent measured."""

    TOTAL = "total"
    TTFB = "ttfb"
    PROBE = "probe"


# --- numbers: JSON numbers only -----------------------------------------------------------------
#
# pydantic's lax numbers read `true` as 1 and "12" as 12: `"duration_ms": true` became a 1 ms
# call. Input numbers are JSON numbers (booleans and strings are refused); only cost_usd also
# takes a string, its exact decimal form (schemas.types.MoneyUSD).


def _whole(value: float) -> int:
    if not value.is_integer():
        raise PydanticCustomError("int_from_float", "Input should be a whole number")
    return int(value)


def _whole_number_schema(*, ge: int, lt: int, message: str | None = None) -> CoreSchema:
    """A bounded integer that JSON may write as `300` or `300.0` (JSON Schema's "integer" is any
    number without a fraction). Rust only for an int; Python runs only for a float. With
    `message`, any failure is one error at the field's own location ("tokens_in", not
    "tokens_in.chain[...]"), so dead-letter reasons and error_fields name the field plainly."""
    bounded = core_schema.int_schema(ge=ge, lt=lt, strict=True)
    from_float = core_schema.chain_schema(
        [
            core_schema.float_schema(strict=True, allow_inf_nan=False),
            core_schema.no_info_plain_validator_function(_whole),
            bounded,
        ]
    )
    if message is None:
        return core_schema.union_schema([bounded, from_float])
    return core_schema.union_schema(
        [bounded, from_float], custom_error_type="whole_number", custom_error_message=message
    )


@dataclass(frozen=True, slots=True)
class _Tokens:
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return _whole_number_schema(
            ge=0,
            lt=MAX_TOKENS + 1,
            message=f"Input should be a whole number of tokens from 0 to {MAX_TOKENS}",
        )


Tokens = Annotated[
    int, _Tokens(), WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_TOKENS})
]


@dataclass(frozen=True, slots=True)
class _ErrorType:
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # A code sent as a number must be a 64-bit integer: orjson (the audit trail's reader)
        # reads larger integers as floats, and a replay of the trail would see another name.
        code = core_schema.no_info_after_validator_function(
            str, _whole_number_schema(ge=-(2**63), lt=2**64)
        )
        return core_schema.union_schema(
            [core_schema.str_schema(max_length=MAX_ID_LEN), code],
            custom_error_type="error_type",
            custom_error_message=(
                f"Input should be a string of at most {MAX_ID_LEN} characters or a whole number"
            ),
        )


# Producers often send HTTP status codes as numbers (500) and the seeds write them as strings
# ("500"); both mean the same error type, so numbers become their decimal string.
ErrorType = Annotated[
    str,
    _ErrorType(),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": MAX_ID_LEN}, {"type": "integer"}]},
        mode="validation",
    ),
]

DurationMs = Annotated[float, Strict(), Field(ge=0.0, le=MAX_DURATION_MS)]


def nests_deeper(value: Any, levels: int) -> bool:
    """Whether `value` (parsed JSON) nests more than `levels` levels of arrays and objects.
    Level by level, so no recursion and at most one pass over the value."""
    level = [value]
    for _ in range(levels + 1):
        containers = [item for item in level if isinstance(item, list | dict)]
        if not containers:
            return False
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return True


def _attribute_error(
    kind: str, message: str, loc: tuple[str, ...], value: Any, **context: Any
) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(kind, message, context), loc=("attributes", *loc), input=value
    )


_FIELD_LEVELS = MAX_JSON_DEPTH - 1  # an unknown field's value: the event object is one level


def _attribute_value(key: str, value: Any) -> str | InitErrorDetails:
    """An unknown field's value as an attribute (non-strings as compact JSON), or its error."""
    if isinstance(value, str):
        return value
    try:
        encoded: bytes | None = orjson.dumps(value)
    except TypeError:  # Python callers' arbitrary objects; integers beyond 64 bits; 255+ levels
        encoded = None
    # Nesting N levels takes N opening brackets: counted at C speed, so the walk in Python
    # (~10 us for a small object) runs only for a value with that many, or none encoded.
    if (
        encoded is None or encoded.count(b"[") + encoded.count(b"{") > _FIELD_LEVELS
    ) and nests_deeper(value, _FIELD_LEVELS):
        return _attribute_error(
            "json_too_deep",
            "Nested deeper than {max_depth} levels",
            (key,),
            value,
            max_depth=MAX_JSON_DEPTH,
        )
    if encoded is None:
        return _attribute_error("attribute_type", "Value is not JSON-encodable", (key,), None)
    return encoded.decode()


def _merge_unknown_fields(
    attributes: dict[str, str], extra: dict[str, Any]
) -> tuple[dict[str, str], list[InitErrorDetails]]:
    """attributes + unknown fields (non-str values as compact JSON), and any cap violations."""
    merged = dict(attributes)
    if len(merged) + len(extra) > MAX_ATTRIBUTES:
        # Checked before any encoding so a flood of unknown fields costs one comparison.
        count = len(merged.keys() | extra.keys())
        if count > MAX_ATTRIBUTES:
            error = _attribute_error(
                "too_many_attributes",
                "Should have at most {max_length} entries after adding unknown top-level "
                "fields, not {count}",
                (),
                {**merged, **extra},
                max_length=MAX_ATTRIBUTES,
                count=count,
            )
            return merged, [error]
    errors: list[InitErrorDetails] = []
    for key, raw_value in extra.items():
        value = _attribute_value(key, raw_value)
        if not isinstance(value, str):
            errors.append(value)
            continue
        if len(key) > MAX_ATTRIBUTE_KEY_LEN:
            errors.append(
                _attribute_error(
                    "attribute_key_too_long",
                    "Unknown field name should have at most {max_length} characters",
                    (key,),
                    key,
                    max_length=MAX_ATTRIBUTE_KEY_LEN,
                )
            )
        elif len(value) > MAX_ATTRIBUTE_VALUE_LEN:
            errors.append(
                _attribute_error(
                    "attribute_value_too_long",
                    "Unknown field value should have at most {max_length} characters",
                    (key,),
                    value,
                    max_length=MAX_ATTRIBUTE_VALUE_LEN,
                )
            )
        elif merged.setdefault(key, value) != value:
            errors.append(
                _attribute_error(
                    "attribute_conflict",
                    "Unknown top-level field conflicts with the attribute of the same name",
                    (key,),
                    value,
                )
            )
    return merged, errors


class EventBase(WireModel):
    """Fields and behaviour shared by every input event."""

    # Unknown top-level fields are accepted here and moved into `attributes` right after
    # validation, so the Rust fast path never has to call into Python for known fields.
    model_config = ConfigDict(extra="allow")

    event_id: Identifier
    """Producer-assigned unique id; duplicates within the de-duplication horizon count once."""
    ts: InputEventTime
    """Event time (not arrival time): windows, periods and lateness are computed from it.
    Between 1970-01-01T00:00:00Z and 8999-12-31T23:59:59.999Z (`schemas.limits`)."""
    attributes: Attributes = Field(default_factory=dict)
    """Free-form labels. Unknown top-level fields end up here (non-strings JSON-encoded)."""

    @model_validator(mode="after")
    def _keep_unknown_fields(self) -> Self:
        extra = self.__pydantic_extra__
        if not extra:  # the common case: nothing unknown, nothing to do
            return self
        merged, errors = _merge_unknown_fields(self.attributes, extra)
        if errors:
            # A ValidationError raised here keeps its locations ("attributes.<key>"), so the
            # dead-letter reason names the offending field like any native error would.
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        # The model is frozen; this is its own validator finishing construction.
        object.__setattr__(self, "attributes", merged)
        object.__setattr__(self, "__pydantic_extra__", {})
        self.__pydantic_fields_set__.difference_update(extra)
        self.__pydantic_fields_set__.add("attributes")
        return self


class ScopedEvent(EventBase):
    """Scope attributes that budgets and SLOs select on; defined once for every event type."""

    user: ShortStr | None = None
    project: ShortStr | None = None
    team: ShortStr | None = None
    org: ShortStr | None = None
    api_key_id: ShortStr | None = None
    environment: ShortStr | None = None
    session_id: ShortStr | None = None
    data_classification: ShortStr | None = None
    """Classification level the producer assigned (e.g. public, internal, pii, phi)."""


DATA_CLASSES_ATTRIBUTE = "data_classes"
"""The attribute listing, comma-separated, every data class a call carried (besides
`data_classification`): what a gateway declared to `check()` (`workers.audit.data_risk`)."""


class ToolInvocation(ScopedEvent):
    """One call of an LLM or tool by an agent (topic `tool-invocations`)."""

    vendor: Identifier
    tool: Identifier
    model: ShortStr | None = None
    status: InvocationStatus
    error_type: ErrorType | None = None
    """Error class for breakers' error_types / exclude_errors: timeout, 500, rate_limit, 401..."""
    duration_ms: DurationMs
    """Wall time of the call in milliseconds; slow-call rates are computed from it."""
    tokens_in: Tokens = 0
    tokens_out: Tokens = 0
    cost_usd: MoneyUSD = Decimal(0)
    """Cost of this call in USD (exact decimal; a JSON string on output)."""


class CostEvent(ScopedEvent):
    """A cost not tied to one invocation, e.g. a billing-export line (topic `cost-events`)."""

    vendor: ShortStr | None = None
    model: ShortStr | None = None
    cost_usd: MoneyUSD
    tokens: Tokens | None = None
    source: Identifier
    """Who reported the cost (e.g. billing-export, gateway); used to avoid double counting."""


class LatencyEvent(EventBase):
    """A latency measurement (topic `latency-events`)."""

    vendor: Identifier
    tool: Identifier
    latency_ms: DurationMs
    kind: LatencyKind


InputEvent = ToolInvocation | CostEvent | LatencyEvent

#: Logical input-topic name (without the configurable prefix) -> the model its values decode to.
INPUT_EVENT_TYPES: Mapping[str, type[InputEvent]] = MappingProxyType(
    {
        "tool-invocations": ToolInvocation,
        "cost-events": CostEvent,
        "latency-events": LatencyEvent,
    }
)
