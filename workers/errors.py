"""One root exception for guardstream; subclasses carry the data a caller needs.

The root and the errors topics/ raises are defined in `topics.errors` (topics/ must not import
workers/) and re-exported here, so code above topics/ imports every error from this module.
"""

from __future__ import annotations

from topics.errors import BrokerUnavailableError, GuardstreamError, InvalidEventError

__all__ = [
    "AuditTamperedError",
    "BrokerUnavailableError",
    "ConfigError",
    "GuardstreamError",
    "InvalidEventError",
    "ReplayMismatchError",
    "TopicMismatchError",
]


class ConfigError(GuardstreamError):
    """Settings or policy that cannot be used as given."""

    exit_code = 2


class TopicMismatchError(GuardstreamError):
    """Existing topics whose settings contradict the catalog."""

    exit_code = 3

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


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
