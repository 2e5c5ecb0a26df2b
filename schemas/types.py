"""Reusable field types for the wire models.

Everything here validates in pydantic-core (Rust) except where a comment says why Python runs.
The caps come from `schemas.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    GetCoreSchemaHandler,
    JsonValue,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from schemas.limits import (
    EARLIEST_EVENT_YEAR,
    LATEST_EVENT_YEAR,
    MAX_ATTRIBUTE_KEY_LEN,
    MAX_ATTRIBUTE_VALUE_LEN,
    MAX_ATTRIBUTES,
    MAX_EVIDENCE,
    MAX_ID_LEN,
    MAX_MONEY_TOTAL_USD,
    MAX_MONEY_USD,
    MAX_TEXT_LEN,
    MAX_TOKENS,
)

# --- time -------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def epoch_ms(instant: datetime) -> int:
    """An aware instant as integer Unix milliseconds, exactly (no float rounding), so replay
    and every kernel agree on which millisecond an event belongs to."""
    return (instant - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    """Inverse of :func:`epoch_ms`, in ``datetime.UTC``."""
    return _EPOCH + ms * _ONE_MS


def rfc3339_ms(ms: int) -> str:
    """Unix milliseconds as RFC 3339 UTC with exactly three fraction digits
    ("2026-11-22T01:00:00.120Z"): one spelling per instant, for stable line formats."""
    return from_epoch_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


EARLIEST_EVENT_TIME_TEXT = f"{EARLIEST_EVENT_YEAR:04d}-01-01T00:00:00Z"
LATEST_EVENT_TIME_TEXT = f"{LATEST_EVENT_YEAR:04d}-12-31T23:59:59.999Z"


def _as_utc(value: datetime) -> datetime | None:
    # pydantic keeps a parsed "+02:00" offset; windows, periods and the audit encoding need one
    # zone, so anything not at offset zero is converted. Offset-zero values are kept as parsed
    # (pydantic's own UTC tzinfo for "Z" and epoch input): they compare, hash and serialise
    # ("...Z") exactly like `datetime.UTC`, and skipping `astimezone` for them saves ~0.3 us
    # per event on the ingest hot path (measured; it is the most common input).
    if value.tzinfo is UTC or not value.utcoffset():
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # "9999-12-31T23:59:59-00:01" is valid RFC 3339, but its UTC instant lies past
        # datetime.max ("0001-01-01T00:00:00+00:01": before datetime.min). The bare
        # OverflowError was no ValidationError: it escaped validation and stopped the ingest
        # loop instead of dead-lettering the record.
        return None


def _to_utc(value: datetime) -> datetime:
    utc = _as_utc(value)
    if utc is None:
        raise PydanticCustomError(
            "datetime_utc_range",
            "Input should be an instant between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        )
    return utc


def _to_utc_event_time(value: datetime) -> datetime:
    # Kernels add windows and calendar periods to event times; an event near datetime's limits
    # made them overflow (`date value out of range`, `year 10000 is out of range`) far from
    # the input that caused it. A documented range well inside keeps every sum an instant.
    utc = _as_utc(value)
    if utc is None or not EARLIEST_EVENT_YEAR <= utc.year <= LATEST_EVENT_YEAR:
        raise PydanticCustomError(
            "event_time_range",
            "Event time should be between {earliest} and {latest}",
            {"earliest": EARLIEST_EVENT_TIME_TEXT, "latest": LATEST_EVENT_TIME_TEXT},
        )
    return utc


def _event_time_input_schema(description: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "format": "date-time", "description": "RFC 3339 with an offset"},
            {"type": "number", "description": "Unix epoch milliseconds"},
        ],
        "description": description,
    }


_EVENT_TIME_INPUT_SCHEMA = _event_time_input_schema(
    "RFC 3339 timestamp with offset, or Unix epoch milliseconds; stored as UTC."
)

# An instant: RFC 3339 *with* an offset (naive timestamps are rejected, their zone is unknown)
# or Unix epoch *milliseconds* as a JSON int/float (pydantic's lax mode also reads a numeric
# string such as "1714564800000" as epoch ms). Serialised as RFC 3339 UTC ("...Z").
#
# Epoch numbers are always milliseconds because `WireModel` sets `val_temporal_unit=
# "milliseconds"` (native pydantic-core). pydantic's default ("infer") would read values below
# 2e10 as *seconds*, so `1000` would mean 1970-01-01T00:16:40Z instead of ...00:00:01Z. The
# option is per model config, so outside a WireModel use `TypeAdapter(EventTime,
# config=WIRE_CONFIG)` (see schemas.base).
EventTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    WithJsonSchema(_EVENT_TIME_INPUT_SCHEMA, mode="validation"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]

# The event time of a record in an input partition (events, clock ticks, overrides): an
# EventTime within [EARLIEST_EVENT_YEAR, LATEST_EVENT_YEAR] (schemas.limits), so that what
# the kernels derive from it (window ends, period boundaries, retry instants) is an EventTime
# too. Epoch values within that range are below 2**53: exact in any JSON consumer's double.
InputEventTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc_event_time),
    WithJsonSchema(
        _event_time_input_schema(
            "RFC 3339 timestamp with offset, or Unix epoch milliseconds; stored as UTC. "
            f"Between {EARLIEST_EVENT_TIME_TEXT} and {LATEST_EVENT_TIME_TEXT}."
        ),
        mode="validation",
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]

# The instants an EventTime can hold, as Unix milliseconds (datetime's own range): e.g. a
# Kafka record timestamp outside it cannot be written into a DeadLetter's `record_ts`.
EPOCH_MS_MIN: Final = -62_135_596_800_000  # 0001-01-01T00:00:00Z
EPOCH_MS_MAX: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

# A positive span of time. Strict so that JSON accepts ISO 8601 durations ("PT1H", "P30D") only:
# pydantic reads a bare number as *seconds*, which would clash with the epoch-ms convention.
Duration = Annotated[timedelta, Strict(), Field(gt=timedelta(0))]

# --- money and counts -------------------------------------------------------------------------


def _fixed_point(value: Decimal) -> str:
    # str(Decimal) switches to exponent notation ("1E+5", "1E-7"); fixed point is what consumers
    # and humans expect of an amount and is just as exact. "-0" (valid input: -0 >= 0) is
    # written as "0" so that zero has one spelling on the wire.
    if value.is_zero():
        value = value.copy_abs()
    return format(value, "f")


def _not_a_sequence(value: Any) -> Any:
    if isinstance(value, list | tuple):
        raise PydanticCustomError(
            "decimal_type", "Decimal input should be an integer, float, string or Decimal object"
        )
    return value


@dataclass(frozen=True, slots=True)
class _Amount:
    """Core schema of a bounded Decimal amount (see MoneyUSD)."""

    ge: Decimal
    le: Decimal

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # In lax mode pydantic-core hands a 3-item array to Decimal((sign, digits, exponent)):
        # JSON [0,[1,2],-2] became 0.12 and [2,[1],0] raised a bare ValueError instead of a
        # ValidationError (found by the property tests; pydantic-core 2.46), which would crash
        # an ingest loop instead of dead-lettering the record. Strict JSON decimal accepts
        # exactly numbers and strings, natively. The Python path stays lax (Decimal, int, str,
        # float) but refuses sequences, for policy files loaded from YAML.
        def bounded(strict: bool) -> CoreSchema:
            return core_schema.decimal_schema(
                ge=self.ge, le=self.le, allow_inf_nan=False, strict=strict
            )

        return core_schema.json_or_python_schema(
            json_schema=bounded(strict=True),
            python_schema=core_schema.no_info_before_validator_function(
                _not_a_sequence, bounded(strict=False)
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _fixed_point, return_schema=core_schema.str_schema(), when_used="json"
            ),
        )


# An amount in USD: Decimal, never float arithmetic. Strings ("0.0001") are exact at any
# precision. JSON *numbers* go through pydantic-core's parser, which reads them as IEEE doubles
# and builds the Decimal from the double's shortest round-trip repr (verified, pydantic-core
# 2.46): so 0.0001 becomes Decimal('0.0001'), not the binary expansion 0.000100000000000000004..,
# and the result is exact for every decimal of up to 15 significant digits and for every number
# a float-based producer (JS, Python, orjson) writes. Only numbers with more digits than a double
# holds (e.g. 123456789.123456789) lose their tail; producers that need that send strings, as
# guardstream's own encoder does. A Python before-validator could not help (it sees the double,
# not the text). NaN/Infinity/arrays/booleans are rejected. Serialised to JSON as a fixed-point
# *string* so that no consumer parses it into a float by accident; Python mode keeps Decimal.
MoneyUSD = Annotated[Decimal, _Amount(ge=Decimal(0), le=MAX_MONEY_USD)]

# Sums and projections computed by the kernels; same encoding, more head-room.
MoneyTotalUSD = Annotated[Decimal, _Amount(ge=Decimal(0), le=MAX_MONEY_TOTAL_USD)]

# Differences such as "remaining" that go negative when a budget is overspent.
SignedMoneyUSD = Annotated[Decimal, _Amount(ge=-MAX_MONEY_TOTAL_USD, le=MAX_MONEY_TOTAL_USD)]

TokenCount = Annotated[int, Field(ge=0, le=MAX_TOKENS)]

# A fraction in [0, 1] (failure rate, slow-call rate, SLO target...).
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

# --- strings ----------------------------------------------------------------------------------

# A name or id that may be empty (optional scope attributes, model names, error types).
ShortStr = Annotated[str, StringConstraints(max_length=MAX_ID_LEN)]

# A name or id that must be present: an empty event_id would collapse de-duplication, an empty
# vendor would merge every vendor's breaker into one.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LEN)]

# Free text for humans (summaries, reasons).
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LEN)]

# Lower-case hex SHA-256 digest (audit chain hashes, policy versions).
HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

# The content hash (SHA-256 hex of the canonical spec) of the policy a decision was made under;
# see schemas.policy.PolicyDocument.
PolicyVersion = HexDigest

AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_KEY_LEN)]
AttributeValue = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE_LEN)]

# Free-form str -> str labels, bounded in count and length.
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)]

# Source event ids that justify a decision, bounded so one alert cannot carry a whole window.
Evidence = Annotated[list[Identifier], Field(max_length=MAX_EVIDENCE)]

# Structured payloads that are not worth a model of their own; values are plain JSON.
# (No Decimal inside: put money there as its fixed-point string.)
JsonObject = dict[str, JsonValue]

# --- shared vocabularies ----------------------------------------------------------------------


class Severity(StrEnum):
    """Alert and audit severity, lowest first (DESIGN §7; the seeds' audit severities)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    PAGE = "page"
