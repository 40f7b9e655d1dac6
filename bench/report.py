"""The table printed at the end of a run, and the JSON file written for comparisons over time."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.core import Quantity, Row, format_number
from bench.runner import Outcome

SCHEMA = "custos-bench/1"
HEADERS = ("benchmark", "project figure", "physical reference", "ratio", "goal", "met")


@dataclass(frozen=True)
class RunInfo:
    started_at: datetime
    finished_at: datetime
    quick: bool
    argv: Sequence[str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def table(outcomes: Sequence[Outcome]) -> str:
    lines: list[tuple[str, ...]] = [HEADERS]
    for outcome in outcomes:
        if outcome.error or outcome.skipped:
            state = "ERROR" if outcome.error else "skipped"
            lines.append((outcome.benchmark, f"{state}: {outcome.error or outcome.skipped}"))
            continue
        for row in outcome.rows:
            lines.append(_cells(row))
    widths = [max(len(line[i]) for line in lines if len(line) > i) for i in range(len(HEADERS))]
    out = []
    for index, line in enumerate(lines):
        if len(line) < len(HEADERS):
            out.append(f"{line[0]:<{widths[0]}}  {line[1]}")
        else:
            out.append(
                "  ".join(f"{cell:<{width}}" for cell, width in zip(line, widths, strict=True))
            )
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(cell.rstrip() for cell in out)


def _cells(row: Row) -> tuple[str, ...]:
    if row.skipped:
        return (
            row.name,
            f"skipped: {row.skipped}",
            "",
            "",
            row.goal.text() if row.goal else "-",
            "-",
        )
    reference = f"{row.reference.text()} ({row.reference.what})" if row.reference else "-"
    ratio = format_number(row.ratio) if row.ratio is not None else "-"
    met = {True: "yes", False: "NO", None: "-"}[row.met]
    return (
        row.name,
        f"{row.figure.text()} ({row.figure.what})",
        reference,
        ratio,
        row.goal.text() if row.goal else "-",
        met,
    )


def _quantity(quantity: Quantity | None) -> dict[str, Any] | None:
    if quantity is None:
        return None
    return {"value": quantity.value, "unit": quantity.unit, "what": quantity.what}


def row_json(benchmark: str, row: Row) -> dict[str, Any]:
    goal = row.goal
    return {
        "benchmark": benchmark,
        "name": row.name,
        "figure": _quantity(row.figure) if not row.skipped else None,
        "reference": _quantity(row.reference) if not row.skipped else None,
        "ratio": row.ratio,
        "goal": (
            {"op": goal.op, "value": goal.value, "on": goal.on, "unit": goal.unit} if goal else None
        ),
        "met": row.met,
        "skipped": row.skipped,
        "details": dict(row.details),
    }


def document(outcomes: Sequence[Outcome], info: RunInfo) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "started_at": info.started_at.isoformat(),
        "finished_at": info.finished_at.isoformat(),
        "quick": info.quick,
        "argv": list(info.argv),
        "host": _host(info),
        "benchmarks": [
            {
                "name": outcome.benchmark,
                "description": outcome.description,
                "seconds": round(outcome.seconds, 2),
                "error": outcome.error,
                "skipped": outcome.skipped,
            }
            for outcome in outcomes
        ],
        "results": [row_json(o.benchmark, row) for o in outcomes for row in o.rows],
    }


def _host(info: RunInfo) -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mosquitto": _mosquitto_version(),
        "load_before": list(info.load_before),
        "load_after": list(info.load_after),
    }


def _mosquitto_version() -> str | None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    try:
        text = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = text.splitlines()[0] if text else ""
    return first.removeprefix("mosquitto version ").strip() or None


def write_json(out_dir: Path, doc: dict[str, Any], started_at: datetime) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path
