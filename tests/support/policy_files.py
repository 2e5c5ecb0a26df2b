"""Policy files in tests: writing them (text as given, JSON for ``.json``, YAML otherwise) and
the error a loader refuses one with."""

from __future__ import annotations

import json
from collections.abc import Callable
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
