"""The interface every benchmark implements, and the figures it returns.

A benchmark measures a *project figure* and, in the same run, a *physical reference* (what the
machine itself manages with a plain tool: ``mosquitto_sub``, ``mosquitto_pub``, a bare
interpreter), so that results are ratios that survive a change of machine. A goal is checked
either on that ratio or, where the issue sets an absolute budget (resident memory), on the figure.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Comparison = Literal[">=", "<="]
JsonScalar = str | int | float | bool | None
Details = Mapping[str, JsonScalar]


class BenchError(RuntimeError):
    """A benchmark could not measure what it set out to (a process died, a count never came)."""


class BenchSkippedError(Exception):
    """A benchmark, or one of its rows, does not apply to this tree or machine."""


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str
    what: str
    """What was measured, in a few words (``collector committed``, ``mosquitto_sub``)."""

    def text(self) -> str:
        return f"{format_number(self.value)} {self.unit}"


@dataclass(frozen=True)
class Goal:
    op: Comparison
    value: float
    on: Literal["ratio", "figure"] = "ratio"
    unit: str = ""

    def met_by(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def text(self) -> str:
        subject = "ratio" if self.on == "ratio" else "figure"
        unit = f" {self.unit}" if self.unit else ""
        return f"{subject} {self.op} {format_number(self.value)}{unit}"


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, the reference it is divided by, and the goal."""

    name: str
    figure: Quantity
    reference: Quantity | None = None
    goal: Goal | None = None
    details: Details = field(default_factory=dict)
    skipped: str | None = None
    """Why this row could not be measured in this tree (then ``figure`` is a placeholder)."""

    @property
    def ratio(self) -> float | None:
        if self.skipped or self.reference is None or self.reference.value == 0:
            return None
        return self.figure.value / self.reference.value

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.skipped:
            return None
        measured = self.ratio if self.goal.on == "ratio" else self.figure.value
        if measured is None or math.isnan(measured):
            return None
        return self.goal.met_by(measured)


@dataclass
class BenchContext:
    """What the runner gives a benchmark: a private directory, the scale, the cleanup stack."""

    workdir: Path
    quick: bool
    cleanup: contextlib.ExitStack
    """Everything a benchmark starts is registered here; the runner unwinds it on success, on
    error and on Ctrl-C."""
    log: Callable[[str], None] = field(default=lambda message: print(message, file=sys.stderr))
    time_budget_s: float = 300.0
    started: float = field(default_factory=time.monotonic)

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def subdir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remaining_s(self) -> float:
        return max(0.0, self.time_budget_s - (time.monotonic() - self.started))


class Benchmark(Protocol):
    """One benchmark: a module in ``bench/benchmarks/`` exposes an instance as ``BENCHMARK``."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def run(self, ctx: BenchContext) -> list[Row]:
        """Measure and return one or more rows. Raise ``BenchError`` if it cannot measure,
        ``BenchSkippedError`` if it does not apply. Register everything you start on
        ``ctx.cleanup``."""
        ...


def format_number(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"
