"""`guardstream replay` as a user runs it: a file of events in, decisions out, no Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.worker_process import cli_env, run_cli

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
ENV = cli_env("127.0.0.1:1", "replay.")  # no broker: replay must never need one


def event(n: int, vendor: str, status: str, error_type: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": f"e{n}",
        "ts": f"2026-11-21T10:00:{n:02d}Z",
        "vendor": vendor,
        "tool": "chat",
        "status": status,
        "duration_ms": 100,
    }
    if error_type:
        document["error_type"] = error_type
    return document


def write_events(path: Path, documents: list[dict[str, Any]], extra: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in documents) + extra)
    return path


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    # openai/chat is cb.vendor.expensive in configs/breakers.yaml: 2 consecutive failures open
    # it for 45 s; a clock tick after that makes it half-open; 3 successes close it.
    documents = [event(n, "openai", "error", "503") for n in range(3)]
    documents += [event(3, "mistral", "error", "401")]  # excluded error: ignored
    documents += [{"type": "clock", "ts": "2026-11-21T10:00:50Z"}]
    documents += [event(51 + n, "openai", "success") for n in range(3)]
    return write_events(tmp_path / "events.jsonl", documents)


def test_replay_prints_every_decision_as_a_json_line(events_file: Path) -> None:
    args = ["replay", "--input", str(events_file), "--policy", str(REPO / "configs"), "--json"]
    result = run_cli(args, ENV)
    assert result.returncode == 0, result.stderr.decode()
    every = [orjson.loads(line) for line in result.stdout.splitlines()]
    # configs/ has SLOs too (the seeds' objectives warn on this little traffic): breakers here.
    lines = [d for d in every if d["kernel"] == "breaker"]
    assert [(d["type"], d.get("to") or d.get("status")) for d in lines] == [
        ("transition", "open"),
        ("alert", "firing"),
        ("transition", "half_open"),
        ("transition", "closed"),
        ("alert", "resolved"),
    ]
    assert [d["event_id"] for d in lines] == ["e1", "e1", "clock-1795255250000", "e53", "e53"]
    assert {d["key"] for d in lines} == {"openai/chat"}
    assert lines[0]["policy_id"] == "cb.vendor.expensive"
    assert lines[0]["ts"] == "2026-11-21T10:00:01.000Z"
    summary = f"replayed 7 event(s) and 1 clock tick(s): {len(every)} decision(s)"
    assert summary.encode() in result.stderr
    assert run_cli(args, ENV).stdout == result.stdout  # same input, same output


def test_replay_without_json_prints_a_table(events_file: Path) -> None:
    result = run_cli(
        ["replay", "--input", str(events_file), "--policy", str(REPO / "configs")], ENV
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = result.stdout.decode().splitlines()
    assert rows[0].split()[:4] == ["TIME", "KERNEL", "KEY", "DECISION"]
    breaker_rows = [row for row in rows if row.split()[1:2] == ["breaker"]]
    assert "closed -> open (consecutive_failures)" in breaker_rows[0]
    assert len(breaker_rows) == 5


def test_replay_reports_invalid_lines_and_exits_4(tmp_path: Path) -> None:
    source = write_events(
        tmp_path / "bad.jsonl", [event(0, "openai", "success")], b'{"vendor": "x"}\nnope\n'
    )
    result = run_cli(["replay", "--input", str(source), "--json"], ENV)
    assert result.returncode == 4
    assert b"line 2:" in result.stderr
    assert b"line 3: not valid JSON" in result.stderr


def test_replay_refuses_what_the_worker_dead_letters_with_the_same_reasons(
    tmp_path: Path,
) -> None:
    good = orjson.dumps(event(0, "openai", "success"))
    lines = [
        good,
        orjson.dumps({**event(1, "openai", "success"), "note": "x" * 10_000_000}),  # 10 MB
        good[:-1] + b',"extra":NaN}',
        orjson.dumps({**event(2, "openai", "success"), "ts": "9999-12-31T23:59:59-00:01"}),
        good[:-1] + b',"vendor":"other"}',
        orjson.dumps({**event(3, "openai", "success"), "duration_ms": True}),
    ]
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = run_cli(["replay", "--input", str(source), "--json"], ENV)
    assert result.returncode == 4, result.stderr.decode()
    errors = result.stderr.decode()
    assert "line 2: record is 10000" in errors
    assert "over the 65536-byte cap" in errors
    assert "line 3: not valid JSON: not standard JSON: NaN and Infinity" in errors
    assert "line 4: tool-invocations: ts: Event time should be between" in errors
    assert "line 5: not valid JSON: duplicate key 'vendor'" in errors
    assert "line 6: tool-invocations: duration_ms: Input should be a valid number" in errors
    assert "replayed 1 event(s)" in errors
    assert "Traceback" not in errors


def test_a_malformed_policy_is_rejected_naming_file_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "breakers.yaml"
    policy.write_text("breakers:\n  cb.a:\n    failure_threshold: -3\n")
    source = write_events(tmp_path / "e.jsonl", [event(0, "openai", "success")])
    result = run_cli(["replay", "--input", str(source), "--policy", str(tmp_path)], ENV)
    assert result.returncode == 2
    message = result.stderr.decode()
    assert str(policy) in message
    assert "breakers.cb.a.failure_threshold" in message
    assert "-3" in message


def test_the_seed_policies_replay_too(events_file: Path) -> None:
    for seed in ("alpha-solver/circuit_breakers.json", "resontinex/circuit_breakers.yaml"):
        policy = REPO / "configs" / "seeds" / seed
        result = run_cli(["replay", "--input", str(events_file), "--policy", str(policy)], ENV)
        assert result.returncode == 0, result.stderr.decode()


def test_replay_prints_slo_burn_rate_alerts_with_their_tier_and_windows(tmp_path: Path) -> None:
    # configs/slos.yaml: slo.availability, 99.5 % over 30 d per vendor/tool. Ten calls a
    # second for ten minutes, half of them failing from minute 5 (a 100x burn): it pages;
    # clock ticks for an hour after the calls stop resolve the page without traffic.
    documents: list[dict[str, Any]] = []
    for second in range(600):
        for k in range(10):
            failing = second >= 300 and k < 5
            documents.append(
                {
                    "event_id": f"s{second}-{k}",
                    "ts": 1_795_000_000_000 + second * 1000 + k * 50,
                    "vendor": "anthropic",
                    "tool": "search",
                    "status": "error" if failing else "success",
                    "error_type": "503" if failing else None,
                    "duration_ms": 100,
                }
            )
    documents += [{"type": "clock", "ts": 1_795_000_600_000 + n * 30_000} for n in range(1, 121)]
    path = write_events(tmp_path / "slo.jsonl", documents)
    args = ["replay", "--input", str(path), "--policy", str(REPO / "configs"), "--json"]
    result = run_cli(args, ENV, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    pages = [
        line
        for line in lines
        if line["type"] == "alert"
        and line["kernel"] == "slo"
        and line["labels"].get("slo") == "slo.availability"
        and line["labels"].get("severity") == "page"
    ]
    assert [line["status"] for line in pages] == ["firing", "resolved"]
    labels = pages[0]["labels"]
    assert (labels["vendor"], labels["tool"]) == ("anthropic", "search")
    assert labels["tier"].startswith("page-")
    for name in ("long_window", "short_window", "long_burn_rate", "short_burn_rate"):
        assert labels[name]
    assert pages[1]["event_id"].startswith("clock-")  # resolved by time alone
