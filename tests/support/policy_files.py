"""Policy files in tests: reading a seed, writing them (text as given, JSON for ``.json``, YAML
otherwise) and the errors a loader refuses one with."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.errors import ConfigError
from workers.settings import Mode

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
"""The example policies (configs/) and, under seeds/, the seed files they were derived from."""
ALPHA_SOLVER_SEEDS = CONFIGS / "seeds" / "alpha-solver"
RESONTINEX_SEEDS = CONFIGS / "seeds" / "resontinex"
# The seed files of each policy kind, by the project that wrote them.
ALPHA_BREAKERS = ALPHA_SOLVER_SEEDS / "circuit_breakers.json"
ALPHA_BUDGETS = ALPHA_SOLVER_SEEDS / "budget_controls.yaml"
ALPHA_SLAS = ALPHA_SOLVER_SEEDS / "sla_contracts.yaml"
RESONTINEX_BREAKERS = RESONTINEX_SEEDS / "circuit_breakers.yaml"
RESONTINEX_BUDGETS = RESONTINEX_SEEDS / "energy_governance.yaml"
RESONTINEX_SLOS = RESONTINEX_SEEDS / "slo.yaml"


def read_spec(path: Path) -> Any:
    """The document in the policy file `path` (JSON for ``.json``, YAML otherwise), to change
    and write again."""
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def write_policy(path: Path, content: Any) -> Path:
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".json":
        path.write_text(json.dumps(content))
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def config_error(
    load: Callable[[Path, Mode], object], path: Path, mode: Mode = Mode.DEVELOPMENT
) -> str:
    """The message of the ConfigError `load(path, mode)` raises (the test fails if none)."""
    with pytest.raises(ConfigError) as info:
        load(path, mode)
    return str(info.value)


@dataclass(frozen=True)
class PolicyFiles:
    """One policy kind's files in a test: `load` is its loader, `default_name` the file name a
    test writes unless it names another."""

    load: Callable[[Path, Mode], object]
    default_name: str

    def write(self, directory: Path, spec: Any, name: str | None = None) -> Path:
        return write_policy(directory / (name or self.default_name), spec)

    def error(self, path: Path, mode: Mode = Mode.DEVELOPMENT) -> str:
        """The message of the ConfigError loading `path` raises (the test fails if none)."""
        return config_error(self.load, path, mode)

    def error_at(self, file: Path, path_in_file: str) -> str:
        """The message for `file`, which must start with the file and `path_in_file`."""
        message = self.error(file)
        assert message.startswith(f"{file}: {path_in_file}: "), message
        return message

    def errors(self, file: Path) -> str:
        """Every error of `file`, one a line, each of which must name the file."""
        lines = self.error(file).splitlines()
        assert all(line.startswith(f"{file}: ") for line in lines), lines
        return "\n".join(lines)
