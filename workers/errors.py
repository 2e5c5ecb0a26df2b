"""One root exception for guardstream; subclasses carry the data a caller needs."""

from __future__ import annotations


class GuardstreamError(Exception):
    """Root of every error guardstream raises on purpose."""

    exit_code: int = 1


class ConfigError(GuardstreamError):
    """Settings or policy that cannot be used as given."""

    exit_code = 2


class TopicMismatchError(GuardstreamError):
    """Existing topics whose settings contradict the catalog."""

    exit_code = 3

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


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


class AuditTamperedError(GuardstreamError):
    """`audit verify` found an edited, missing, inserted, reordered, forked, duplicated or
    unreadable audit record."""

    exit_code = 6

    def __init__(self, findings: int, first_bad: str) -> None:
        self.findings = findings
        self.first_bad = first_bad
        super().__init__(f"audit trail fails verification ({findings} finding(s)); {first_bad}")


class ReplayMismatchError(GuardstreamError):
    """`replay --source audit --verify` decided differently from the recorded decisions."""

    exit_code = 7

    def __init__(self, mismatches: int) -> None:
        self.mismatches = mismatches
        super().__init__(f"{mismatches} decision(s) differ from the recorded ones")
