"""The root of every wire model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.limits import MAX_TEXT_LEN

# Shared by WireModel and by TypeAdapters that validate a bare field type (e.g. EventTime).
WIRE_CONFIG = ConfigDict(
    # Records are values: kernels return new state instead of mutating, replay compares equal.
    frozen=True,
    # Records guardstream writes are read by other worker versions during a rolling upgrade
    # (compacted state topics are re-read after a restart). Ignoring a field a newer version
    # added keeps old readers working; input events override this to keep unknown fields.
    extra="ignore",
    # Backstop cap for every str without a cap of its own (dict keys, strings in JSON payloads).
    str_max_length=MAX_TEXT_LEN,
    # JSON has no NaN/Infinity; a float field must never smuggle one into arithmetic.
    allow_inf_nan=False,
    # Epoch numbers are milliseconds, always (DESIGN §4); see schemas.types.EventTime.
    val_temporal_unit="milliseconds",
    ser_json_temporal="iso8601",
    ser_json_timedelta="iso8601",
    # bytes travel as base64 (URL-safe alphabet, pydantic-core's native codec).
    ser_json_bytes="base64",
    val_json_bytes="base64",
    # str(ValidationError) must not echo input values into logs: inputs can carry PII
    # (DESIGN §10). Dead-letter reasons use schemas.dead_letter.describe_validation_error.
    hide_input_in_errors=True,
    # cache_strings stays "all" (the default): vendor, tool, model, status and scope values
    # repeat across events, and caching them measured ~10% faster than "keys" on ToolInvocation.
    # A field's docstring becomes its JSON Schema description: the committed schemas document
    # themselves and cannot drift from the code comments.
    use_attribute_docstrings=True,
)


class WireModel(BaseModel):
    """Base of every model that is encoded onto a topic (events, state, alerts, audit...)."""

    model_config = WIRE_CONFIG


class KeyedRecord(WireModel):
    """A routed record (`budget-spend`, `slo-counts`): sent keyed by the state it counts for."""

    key: str
