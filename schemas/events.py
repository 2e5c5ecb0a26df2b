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
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Self

import orjson
from pydantic import ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.base import WireModel
from schemas.limits import (
    MAX_ATTRIBUTE_KEY_LEN,
    MAX_ATTRIBUTE_VALUE_LEN,
    MAX_ATTRIBUTES,
    MAX_DURATION_MS,
    MAX_ID_LEN,
)
from schemas.types import Attributes, EventTime, Identifier, MoneyUSD, ShortStr, TokenCount


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


# Producers often send HTTP status codes as numbers (500) and the seeds write them as strings
# ("500"); both mean the same error type, so numbers are coerced to their decimal string.
ErrorType = Annotated[
    str,
    Field(coerce_numbers_to_str=True, max_length=MAX_ID_LEN),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": MAX_ID_LEN}, {"type": "integer"}]},
        mode="validation",
    ),
]

DurationMs = Annotated[float, Field(ge=0.0, le=MAX_DURATION_MS)]


def _attribute_error(
    kind: str, message: str, loc: tuple[str, ...], value: Any, **context: Any
) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(kind, message, context), loc=("attributes", *loc), input=value
    )


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
        try:
            value = raw_value if isinstance(raw_value, str) else orjson.dumps(raw_value).decode()
        except TypeError:  # only from Python callers passing arbitrary objects
            errors.append(
                _attribute_error("attribute_type", "Value is not JSON-encodable", (key,), None)
            )
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
    ts: EventTime
    """Event time (not arrival time): windows, periods and lateness are computed from it."""
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
    tokens_in: TokenCount = 0
    tokens_out: TokenCount = 0
    cost_usd: MoneyUSD = Decimal(0)
    """Cost of this call in USD (exact decimal; a JSON string on output)."""


class CostEvent(ScopedEvent):
    """A cost not tied to one invocation, e.g. a billing-export line (topic `cost-events`)."""

    vendor: ShortStr | None = None
    model: ShortStr | None = None
    cost_usd: MoneyUSD
    tokens: TokenCount | None = None
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
