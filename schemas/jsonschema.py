"""Generated JSON Schema files for every wire model, and the drift check.

    python -m schemas.jsonschema --write   # regenerate schemas/json/*.schema.json
    python -m schemas.jsonschema --check   # exit 1, naming the files that drifted

Schemas are generated in pydantic's *validation* mode: they describe what guardstream accepts
(e.g. money as a number or a string, time as RFC 3339 or epoch ms), which is also a correct,
slightly looser, description of what it emits.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson
from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.audit import AuditRecord
from schemas.budget_spend import BudgetSpend
from schemas.clock import ClockTick
from schemas.control import ControlCommand
from schemas.dead_letter import DeadLetter
from schemas.events import CostEvent, LatencyEvent, ToolInvocation
from schemas.override import BreakerOverride
from schemas.policy import PolicyDocument
from schemas.slo_counts import SloCounts
from schemas.state import (
    BreakerState,
    BudgetState,
    DependencyState,
    ObjectiveState,
    SlaState,
    SloState,
)
from schemas.watermark import SourceWatermark

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "json"
SUFFIX: Final = ".schema.json"

#: Every top-level record on a topic, by model name (the schema file's stem).
ALL_MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        model.__name__: model
        for model in (
            ToolInvocation,
            CostEvent,
            LatencyEvent,
            ClockTick,
            BreakerOverride,
            BudgetSpend,
            SourceWatermark,
            Alert,
            AuditRecord,
            BreakerState,
            BudgetState,
            SloState,
            ObjectiveState,
            SlaState,
            DependencyState,
            SloCounts,
            ControlCommand,
            DeadLetter,
            PolicyDocument,
        )
    }
)


def generate() -> dict[str, dict[str, Any]]:
    """Model name -> its JSON Schema (validation mode, with the 2020-12 dialect declared)."""
    return {
        name: {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode="validation")}
        for name, model in ALL_MODELS.items()
    }


def render(schema: Mapping[str, Any]) -> bytes:
    """The committed file format: sorted keys, 2-space indent, trailing newline."""
    return orjson.dumps(
        schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    )


def expected_files() -> dict[str, bytes]:
    """File name -> content that SCHEMA_DIR must hold."""
    return {name + SUFFIX: render(schema) for name, schema in generate().items()}


def drifted(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of files that are missing, differ from the models, or belong to no model."""
    expected = expected_files()
    present = {path.name for path in directory.glob("*" + SUFFIX)}
    problems = [
        name
        for name, content in expected.items()
        if name not in present or (directory / name).read_bytes() != content
    ]
    problems += sorted(present - expected.keys())
    return sorted(problems)


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Bring `directory` in line with the models; return the names of files changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = drifted(directory)
    expected = expected_files()
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_bytes(expected[name])
        else:  # a model was removed or renamed: its old schema must not linger
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.jsonschema",
        description="Generate or check the committed JSON Schema files of the wire models.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the schema files")
    action.add_argument(
        "--check", action="store_true", help="exit 1 if any file differs from the models"
    )
    parser.add_argument(
        "--dir", type=Path, default=SCHEMA_DIR, help=f"schema directory (default: {SCHEMA_DIR})"
    )
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.dir)
        print(f"updated {len(changed)} file(s) in {args.dir}: {', '.join(changed) or 'none'}")
        return 0
    problems = drifted(args.dir)
    if problems:
        print(
            f"JSON Schema drift in {args.dir}: {', '.join(problems)}\n"
            "run `python -m schemas.jsonschema --write` and commit the result",
            file=sys.stderr,
        )
        return 1
    print(f"{len(ALL_MODELS)} schema files in {args.dir} match the models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
