"""Dead letters as they may leave the ingest stage: masked (DESIGN §10). Pure.

A dead letter repeats what a producer sent: its reason quotes short values
(``user: ... (got 'jane@example.com')``), its error fields name attribute keys
(``attributes.jane@example.com``), and it carries the record's key and value. All of it is
published on the dead-letter topic and the reason goes into the audit trail, so all of it is
masked with the classification policy before the stage hands the rejection on:

- `error` and every entry of `error_fields`: as text.
- `original_key`: as text (UTF-8, undecodable bytes kept as they are).
- `original`: the value operators need to repair the input. A value that is JSON (a schema
  violation) is masked field by field, numbers and keys included, and written back compactly
  only when something was found (otherwise the bytes stay exactly as received). A value that
  is not JSON is masked as text; ``\\uXXXX`` escapes are decoded first when that reveals
  something to mask (``jane\\u0040example.com``). Undecodable bytes are kept as they are.
  The mask runs over a little more than the cap before the cut, so a value straddling the cut
  is masked whole, then the masked bytes are cut to the cap.

Why mask `original` rather than drop it: a dead letter is for repair, and the record's shape,
its other fields and the partial masks (``j***@example.com``, ``************4242``) are what
an operator needs to see what went wrong; the unmasked bytes stay on the input topic at the
dead letter's topic/partition/offset for that topic's retention (days), where a repair tool
can re-read them, while dead letters and the audit trail are kept far longer.

The record handed on carries the masked key and value too: the worker keys the dead-letter
message with it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from schemas.limits import MAX_DEAD_LETTER_KEY_BYTES, MAX_DEAD_LETTER_ORIGINAL_BYTES
from workers.batching.records import StoredRecord
from workers.ingest.validate import Rejected
from workers.masking.masker import Finding, Masker

# Masked beyond the cap before cutting, so that a value crossing the cut is found whole.
_OVERLAP_BYTES = 256

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def masked_rejection(masker: Masker, rejected: Rejected) -> tuple[Rejected, tuple[Finding, ...]]:
    """`rejected` with its dead letter and record masked, and what was found (never values).
    The very object when nothing was found."""
    letter, record = rejected.dead_letter, rejected.record
    findings: list[Finding] = []
    error = _text(masker, letter.error, "dead_letter.error", findings)
    fields = [
        _text(masker, field, "dead_letter.error_fields", findings) for field in letter.error_fields
    ]
    key = (
        None
        if record.key is None
        else masked_bytes(masker, record.key, "dead_letter.original_key", findings)
    )
    value = (
        None
        if record.value is None
        else masked_bytes(masker, record.value, "dead_letter.original", findings)
    )
    if not findings:
        return rejected, ()
    masked_letter = letter.model_copy(
        update={
            "error": error,
            "error_fields": fields,
            "original_key": None if key is None else key[:MAX_DEAD_LETTER_KEY_BYTES],
            "original": (value or b"")[:MAX_DEAD_LETTER_ORIGINAL_BYTES],
            "original_truncated": len(value or b"") > MAX_DEAD_LETTER_ORIGINAL_BYTES,
        }
    )
    masked_record = StoredRecord(
        record.topic, record.partition, record.offset, record.timestamp, key, value
    )
    return Rejected(masked_record, masked_letter), tuple(findings)


def masked_bytes(masker: Masker, raw: bytes, path: str, out: list[Finding]) -> bytes:
    """`raw` (a record's key or value) masked as JSON or text, at most the original cap plus a
    little (see the module docstring); the very object when nothing was found."""
    head = raw[: MAX_DEAD_LETTER_ORIGINAL_BYTES + _OVERLAP_BYTES]
    document = _json(head) if len(head) == len(raw) else None
    if document is not None:
        masked = masker.mask(document[0], path)
        if not masked.findings:
            return raw
        out.extend(masked.findings)
        return orjson.dumps(masked.value)
    text = head.decode("utf-8", "surrogateescape")
    masked_text, found = masker.mask_text(text, path)
    if "\\u" in text:
        unescaped = _ESCAPE.sub(_unescape, text)
        if unescaped != text:
            decoded_text, decoded_found = masker.mask_text(unescaped, path)
            if len(decoded_found) > len(found):
                masked_text, found = decoded_text, decoded_found
    if not found:
        return raw
    out.extend(found)
    return masked_text.encode("utf-8", "surrogateescape")


def _text(masker: Masker, text: str, path: str, out: list[Finding]) -> str:
    masked, found = masker.mask_text(text, path)
    out.extend(found)
    return masked


def _json(raw: bytes) -> tuple[Any] | None:
    """The JSON document in `raw` (in a 1-tuple: it may be null), or None."""
    try:
        return (orjson.loads(raw),)
    except orjson.JSONDecodeError:
        return None


def _unescape(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    # A lone surrogate would not encode back; it is no character a detector looks for.
    return match.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)
