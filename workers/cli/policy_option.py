"""The `--policy` option of the long-running commands, and loading what it names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from workers.cli.context import CliContext
from workers.errors import ConfigError
from workers.policies.policy_set import PolicySet, load_policies

F = TypeVar("F", bound=Callable[..., Any])


def policy_option(command: F) -> F:
    return click.option(
        "--policy",
        "policy_dir",
        type=click.Path(exists=True),
        envvar="GUARDSTREAM_POLICY_DIR",
        help="Policy directory or file (default: the runtime mode's built-in policies).",
    )(command)


def policies_or_exit(cli: CliContext, policy_dir: str | None) -> PolicySet:
    """The policies `--policy` (or GUARDSTREAM_POLICY_DIR) names; exit 2 naming what is
    wrong when they are invalid."""
    policy_path = policy_dir or cli.settings.policy_dir
    try:
        return load_policies(Path(policy_path) if policy_path else None, cli.settings.mode)
    except ConfigError as exc:
        cli.err.print(f"[red]invalid policy:[/] {exc}", highlight=False)
        raise SystemExit(ConfigError.exit_code) from None
