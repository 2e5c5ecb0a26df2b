"""The committed JSON Schema files are exactly what the models generate."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from schemas import WireModel
from schemas.jsonschema import (
    ALL_MODELS,
    JSON_SCHEMA_DIALECT,
    SCHEMA_DIR,
    drifted,
    expected_files,
    main,
    render,
)


def test_committed_schemas_match_the_models() -> None:
    # On failure: `python -m schemas.jsonschema --write` and commit schemas/json.
    assert drifted(SCHEMA_DIR) == []


def test_one_file_per_model_and_nothing_else() -> None:
    files = sorted(path.name for path in SCHEMA_DIR.iterdir())
    assert files == sorted(f"{name}.schema.json" for name in ALL_MODELS)


def test_registry_covers_every_topic_value_type() -> None:
    # DESIGN §3: one value model per topic.
    assert set(ALL_MODELS) == {
        "ToolInvocation", "CostEvent", "LatencyEvent", "PolicyDocument", "Alert", "AuditRecord",
        "BreakerState", "BudgetState", "SloState", "ControlCommand", "DeadLetter", "ClockTick",
        "BreakerOverride", "BudgetSpend", "SourceWatermark", "ObjectiveState", "SlaState",
        "SloCounts", "DependencyState",
    }  # fmt: skip
    assert all(issubclass(model, WireModel) for model in ALL_MODELS.values())


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_file_format(name: str) -> None:
    content = (SCHEMA_DIR / f"{name}.schema.json").read_bytes()
    schema = orjson.loads(content)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["title"] == name
    assert content.endswith(b"}\n")
    assert content == render(schema)  # sorted keys, 2-space indent
    assert b'\n  "properties": {' in content


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    target = tmp_path / "json"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def test_check_detects_edited_missing_and_stale_files(
    schema_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--dir", str(schema_copy)]) == 0
    edited = schema_copy / "Alert.schema.json"
    edited.write_bytes(edited.read_bytes().replace(b'"maxLength": 4096', b'"maxLength": 4097'))
    (schema_copy / "SloState.schema.json").unlink()
    (schema_copy / "Retired.schema.json").write_bytes(b"{}\n")

    assert drifted(schema_copy) == [
        "Alert.schema.json",
        "Retired.schema.json",
        "SloState.schema.json",
    ]
    assert main(["--check", "--dir", str(schema_copy)]) == 1
    err = capsys.readouterr().err
    assert "Alert.schema.json" in err
    assert "SloState.schema.json" in err
    assert "--write" in err

    assert main(["--write", "--dir", str(schema_copy)]) == 0
    assert drifted(schema_copy) == []
    assert not (schema_copy / "Retired.schema.json").exists()
    assert {p.name: p.read_bytes() for p in schema_copy.iterdir()} == expected_files()


def test_check_fails_when_a_model_changes(
    schema_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ToolInvocation(WireModel):  # same name, different shape
        event_id: str

    monkeypatch.setattr(
        "schemas.jsonschema.ALL_MODELS", {**ALL_MODELS, "ToolInvocation": ToolInvocation}
    )
    assert drifted(schema_copy) == ["ToolInvocation.schema.json"]


def test_cli_requires_an_action() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
