"""Masking log records (DESIGN §10: nothing unmasked from the classification patterns reaches
logs).

`MaskingLogFilter` formats a record's message with its args first (a PII value usually
arrives as an argument: ``log.info("user %s", email)``), masks the result, and stores it as
the message with no args. The traceback of `exc_info` is formatted and masked into
`exc_text` and `exc_info` is cleared, since a traceback object cannot be masked: any
formatter that prints `exc_text` (logging.Formatter does) prints the masked text. A
formatter that calls ``formatException(record.exc_info)`` itself (workers.logs.JsonFormatter
today) must fall back to `record.exc_text` when `exc_info` is None, or the exception is
dropped (never shown unmasked). `stack_info` is masked too. Attributes passed with
``extra=`` are not touched: guardstream's formatters do not print them.

Where to install: `install_log_masking(masker)` attaches the filter to the root logger's
handlers, which every propagating logger's records pass through. Call it after logging is
configured (dictConfig replaces handlers; for a Faust worker, in the app's startup hook after
the worker applied `workers.logs.logging_config`), and again whenever the classification
policy changes (it replaces the previous filter). A handler added later is not covered.
"""

from __future__ import annotations

import logging

from workers.masking.masker import Masker

# Set on a record once masked, so a record that reaches several handlers is masked once.
_MASKED_ATTR = "_guardstream_masked"

_FORMATTER = logging.Formatter()


class MaskingLogFilter(logging.Filter):
    """Masks the message (formatted with its args), exception text and stack of a record."""

    def __init__(self, masker: Masker, name: str = "") -> None:
        super().__init__(name)
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED_ATTR, False):
            return True
        mask = self.masker.mask_text
        record.msg = mask(_message(record))[0]
        record.args = ()
        if record.exc_info:
            text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            record.exc_text = mask(text)[0]
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)[0]
        if record.stack_info:
            record.stack_info = mask(record.stack_info)[0]
        setattr(record, _MASKED_ATTR, True)
        return True


def _message(record: logging.LogRecord) -> str:
    """The message with its args, as a formatter would show it; never raises (a filter that
    raises would take the logging call, and the worker, down with it)."""
    try:
        return record.getMessage()
    except Exception:  # a bad format string or an argument whose __str__ fails
        try:
            return f"{record.msg!s} (unformattable args: {record.args!r})"
        except Exception:
            return "<unformattable log message>"


def install_log_masking(masker: Masker) -> MaskingLogFilter:
    """Attach a MaskingLogFilter for `masker` to every handler of the root logger, replacing
    one installed before (a new policy version). Returns the filter."""
    installed = MaskingLogFilter(masker)
    root = logging.getLogger()
    for handler in root.handlers:
        # Records under the configured level are never shown: let the handler drop them
        # before the filter masks them (Faust logs a debug line per message it sends).
        if handler.level < root.level:
            handler.setLevel(root.level)
        for old in [f for f in handler.filters if isinstance(f, MaskingLogFilter)]:
            handler.removeFilter(old)
        handler.addFilter(installed)
    return installed
