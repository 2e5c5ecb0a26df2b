"""The root exception and the errors the Kafka layer raises.

They live here, not in ``workers.errors``, because topics/ sits below workers/: a publisher or
an admin client must not import the worker to say what went wrong. ``workers.errors``
re-exports them beside the worker's own, so callers import every error from one place.
"""

from __future__ import annotations


class GuardstreamError(Exception):
    """Root of every error guardstream raises on purpose."""

    exit_code: int = 1


class BrokerUnavailableError(GuardstreamError):
    """Kafka could not be reached (or answered with an error) for an admin request."""

    exit_code = 5

    def __init__(self, bootstrap: str, cause: Exception) -> None:
        self.bootstrap = bootstrap
        super().__init__(f"cannot reach Kafka at {bootstrap}: {cause}")


class InvalidEventError(GuardstreamError):
    """An event failed validation before it was published."""

    exit_code = 4

    def __init__(self, reason: str, *, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{reason}")
