"""The benchmark harness works end to end: it finds the benchmarks, runs one, prints the table,
writes JSON with the expected fields, and stops what a benchmark started even when it fails.

No timing is asserted here: figures live in ``bench/`` and are judged by ``custos-bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.core import BenchContext, BenchError, Goal, Quantity, Row
from bench.report import SCHEMA, RunInfo, document, table
from bench.runner import discover, run_one, select
from bench.tools import spawn

EXPECTED = {
    "ingest", "fleet", "agent-footprint", "agent-publish",
    "alert-latency", "offline-detection", "upload-throughput", "recording-start",
}  # fmt: skip


def _only_json(directory: Path) -> dict[str, Any]:
    files = list(directory.glob("*.json"))
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text(encoding="utf-8"))
    return data


def test_list_names_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == {benchmark.name for benchmark in discover()}
    assert listed >= EXPECTED


def test_unknown_name_is_refused(tmp_path: Path) -> None:
    assert main(["--only", "no-such-bench", "--out", str(tmp_path)]) == 2
    with pytest.raises(ValueError, match="no-such-bench"):
        select(discover(), ["no-such-bench"])
    assert not list(tmp_path.iterdir())


def test_one_real_benchmark_end_to_end(tmp_path: Path) -> None:
    """``python -m bench --only agent-publish --quick``: a broker, a collector, an agent process
    and mosquitto_pub, all started and stopped; one table, one JSON file."""
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "agent-publish", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "agent publish path" in completed.stdout
    assert "ratio" in completed.stdout.splitlines()[0]
    data = _only_json(out)
    assert data["schema"] == SCHEMA
    assert data["quick"] is True
    assert {"started_at", "finished_at", "host", "benchmarks", "results"} <= set(data)
    assert data["benchmarks"] == [
        {
            "name": "agent-publish",
            "description": data["benchmarks"][0]["description"],
            "seconds": data["benchmarks"][0]["seconds"],
            "error": None,
            "skipped": None,
        }
    ]
    result, library = data["results"]
    assert library["name"] == "agent publish vs paho alone"
    assert library["figure"] == result["figure"] and library["reference"]["value"] > 0
    assert set(result) == {
        "benchmark", "name", "figure", "reference", "ratio", "goal", "met", "skipped", "details",
    }  # fmt: skip
    assert result["figure"]["unit"] == result["reference"]["unit"] == "msg/CPU-s"
    assert result["figure"]["value"] > 0 and result["reference"]["value"] > 0
    assert result["ratio"] == pytest.approx(
        result["figure"]["value"] / result["reference"]["value"]
    )
    assert result["goal"] == {"op": ">=", "value": 0.15, "on": "ratio", "unit": ""}
    assert isinstance(result["met"], bool)
    assert result["details"]["events"] == 300


@dataclass(frozen=True)
class _Tiny:
    """A benchmark that starts a process, then either reports or fails."""

    fail: bool
    name: str = "tiny"
    description: str = "a process started, a row returned"

    def run(self, ctx: BenchContext) -> list[Row]:
        process = spawn(ctx.cleanup, ["sleep", "60"], log_path=ctx.workdir / "tools.log")
        (ctx.workdir / "pid").write_text(str(process.pid))
        if self.fail:
            raise BenchError("could not measure")
        return [
            Row(
                "tiny rate",
                Quantity(3.0, "msg/s", "project"),
                Quantity(4.0, "msg/s", "reference"),
                Goal(">=", 0.5),
                details={"n": 1},
            )
        ]


def _reaped(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_runner_stops_what_a_benchmark_started(tmp_path: Path) -> None:
    messages: list[str] = []
    ok = run_one(_Tiny(fail=False), tmp_path / "ok", quick=True, log=messages.append)
    failed = run_one(_Tiny(fail=True), tmp_path / "failed", quick=True, log=messages.append)
    for directory in ("ok", "failed"):
        assert _reaped(int((tmp_path / directory / "pid").read_text()))
    assert ok.error is None and failed.error == "BenchError: could not measure"
    (row,) = ok.rows
    assert row.ratio == 0.75 and row.met is True
    printed = table([ok, failed])
    assert "tiny rate" in printed and "ERROR: BenchError: could not measure" in printed
    now = datetime.now(UTC)
    info = RunInfo(
        started_at=now,
        finished_at=now,
        quick=True,
        argv=[],
        load_before=(0.0, 0.0, 0.0),
        load_after=(0.0, 0.0, 0.0),
    )
    doc = json.loads(json.dumps(document([ok, failed], info)))
    assert [b["error"] for b in doc["benchmarks"]] == [None, "BenchError: could not measure"]
    assert doc["results"][0]["ratio"] == 0.75 and doc["results"][0]["met"] is True


ROWS_OF = {
    "alert-latency": [
        f"alert -> {sink} p99, {when}"
        for sink in ("MQTT", "webhook")
        for when in ("idle", "2x load", "2x load / idle")
    ],
    "offline-detection": [
        "offline detection, silent (SIGSTOP), median",
        "offline detection, silent (SIGSTOP), worst",
        "offline detection, crash (SIGKILL), worst",
    ],
}


@pytest.mark.parametrize("name", sorted(ROWS_OF))
def test_quick_run_produces_the_rows(tmp_path: Path, name: str) -> None:
    """``python -m bench --only NAME --quick``: everything it starts is stopped, the run ends
    with status 0 and the JSON holds each of its rows, measured (a number, not a skip)."""
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--only", name, "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = _only_json(out)
    assert [(b["name"], b["error"], b["skipped"]) for b in data["benchmarks"]] == [
        (name, None, None)
    ]
    assert [result["name"] for result in data["results"]] == ROWS_OF[name]
    for result in data["results"]:
        assert result["benchmark"] == name and result["skipped"] is None
        assert isinstance(result["figure"]["value"], float)
        assert isinstance(result["reference"]["value"], float)
        assert result["goal"] is not None or result["name"].endswith(", idle")
    assert all(line in completed.stdout for line in ROWS_OF[name])


REFERENCED_ROWS = {
    "agent-footprint": {
        "agent RSS idle (hb 10 s)": "MB",
        "agent CPU idle (hb 10 s)": "CPU s/h",
        "agent RSS busy (hb 1 s)": "MB",
        "agent CPU busy (hb 1 s)": "CPU s/h",
        "agent busy + synthetic recorder RSS": "MB",
        "agent busy + synthetic recorder CPU": "CPU s/h",
    },
    "upload-throughput": {"upload throughput / slowest stage": "MB/s"},
    "recording-start": {
        "recording start: door -> first new frame on disk": "ms",
        "recording start: pre-roll before the door opened": "s",
    },
}


@pytest.mark.parametrize("name", sorted(REFERENCED_ROWS))
def test_quick_run_measures_each_row_against_a_reference(tmp_path: Path, name: str) -> None:
    """``python -m bench --only NAME --quick`` for the agent's footprint, the upload and the
    recording benchmarks: status 0, and each row measured against a physical reference in the
    same unit, a ratio for every row (no figure is judged)."""
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--only", name, "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = _only_json(out)
    assert [(b["name"], b["error"], b["skipped"]) for b in data["benchmarks"]] == [
        (name, None, None)
    ]
    rows = {result["name"]: result for result in data["results"]}
    assert {row: result["figure"]["unit"] for row, result in rows.items()} == REFERENCED_ROWS[name]
    for row, result in rows.items():
        assert result["figure"]["value"] > 0 and result["reference"]["value"] > 0
        assert result["reference"]["unit"] == result["figure"]["unit"]
        assert result["ratio"] == pytest.approx(
            result["figure"]["value"] / result["reference"]["value"]
        )
        assert row in completed.stdout
