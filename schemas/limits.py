"""Named caps for everything that crosses the wire.

Every cap bounds the memory and CPU one record can cost a worker (DESIGN §4, §10: "input size
caps bound memory per event"). Values that exceed a cap are schema violations and go to the
dead-letter topic; they are never truncated silently. Each name carries its unit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

# Raw size of one input event (ToolInvocation / CostEvent / LatencyEvent) before parsing.
# A typical event is ~250 bytes; 64 KiB leaves room for generous attributes and still stops
# a runaway producer from making the worker parse megabytes per record.
MAX_EVENT_BYTES: Final = 64 * KIB

# Raw size of any record guardstream itself produces (state, audit, policy, dead letter).
# Kafka's default `message.max.bytes` is ~1 MiB, so nothing larger could be published anyway.
MAX_RECORD_BYTES: Final = 1 * MIB

# Of an offending record, at most this many bytes are copied into its DeadLetter, so a dead
# letter always fits in a Kafka message even when the original was absurdly large.
MAX_DEAD_LETTER_ORIGINAL_BYTES: Final = 64 * KIB
# Same for the original record key.
MAX_DEAD_LETTER_KEY_BYTES: Final = 1 * KIB

# Nesting of one input event's JSON, in levels of objects and arrays (the event object itself
# is level 1, its `attributes` level 2; deeper levels only come from unknown fields). Bounds
# the recursion of everything that walks a record (masking, the audit encoding, whose
# orjson.dumps stops at 255 levels) whatever the JSON parsers would allow (pydantic-core's
# parser stops past 201, orjson.loads past 1024).
MAX_JSON_DEPTH: Final = 64

# Event time of input records, in calendar years (UTC), inclusive: [1970-01-01T00:00:00Z,
# 8999-12-31T23:59:59.999Z]. Kernels add windows and calendar periods to event times; events
# near datetime's own limits (years 1 and 9999) made those sums overflow. Nothing an LLM
# gateway records predates the Unix epoch.
EARLIEST_EVENT_YEAR: Final = 1970
LATEST_EVENT_YEAR: Final = 8999

# Identifiers and names (event ids, vendor, tool, model, scope attributes, keys), in characters.
MAX_ID_LEN: Final = 256

# Free text (summaries, reasons, error descriptions), in characters. Also the model-wide
# `str_max_length`, so no string field anywhere can be longer than this.
MAX_TEXT_LEN: Final = 4096

# `attributes` maps (str -> str): entry count, key length and value length in characters.
MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_KEY_LEN: Final = 128
MAX_ATTRIBUTE_VALUE_LEN: Final = 1024

# One monetary amount in an input event or a policy limit, in USD. A billion dollars per
# event is absurd for any LLM call or billing line; larger values are garbage (or an attack).
MAX_MONEY_USD: Final = Decimal(1_000_000_000)

# Aggregates the kernels compute (period spend, projections). Projections extrapolate spikes,
# so they get more head-room than one input amount; still finite so sums stay in Decimal's
# 28-digit default context with 13 digits to spare for fractions.
MAX_MONEY_TOTAL_USD: Final = Decimal(1_000_000_000_000_000)

# Token counts (per event and per aggregate). A trillion is beyond any context window or
# billing export line, and catches garbage such as 2**63 sentinel values.
MAX_TOKENS: Final = 1_000_000_000_000

# Durations reported by producers, in milliseconds. A week bounds long-running agent tools.
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000

# Source event ids attached to an alert, control command or audit record as evidence.
MAX_EVIDENCE: Final = 32

# Items in other bounded lists (thresholds crossed, firing windows, error field paths).
MAX_LIST_ITEMS: Final = 64

# Offending values longer than this (in characters) are described by type and length only in
# dead-letter reasons: inputs can carry PII and reasons end up in logs and dashboards.
MAX_ERROR_VALUE_PREVIEW: Final = 32

# Field errors listed in one dead-letter reason before "(+N more)".
MAX_ERRORS_IN_REASON: Final = 3
