"""Writing policy files for tests: text as given, JSON for ``.json``, YAML otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def write_policy(path: Path, content: Any) -> Path:
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".json":
        path.write_text(json.dumps(content))
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path
