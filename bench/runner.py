"""Finding the benchmarks and running them, each with its own directory and cleanup stack."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import benchmarks as benchmarks_package
from bench.core import BenchContext, BenchError, Benchmark, BenchSkippedError, Row


def discover() -> list[Benchmark]:
    """Every ``BENCHMARK`` of the modules in ``bench/benchmarks/``, in module-name order."""
    found: list[Benchmark] = []
    for module_info in sorted(pkgutil.iter_modules(benchmarks_package.__path__)):
        module = importlib.import_module(f"{benchmarks_package.__name__}.{module_info.name}")
        benchmark = getattr(module, "BENCHMARK", None)
        if benchmark is not None:
            found.append(benchmark)
    return found


def select(available: Sequence[Benchmark], only: Sequence[str]) -> list[Benchmark]:
    if not only:
        return list(available)
    by_name = {benchmark.name: benchmark for benchmark in available}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise ValueError(
            f"unknown benchmark {', '.join(unknown)}; known: {', '.join(sorted(by_name))}"
        )
    return [by_name[name] for name in only]


@dataclass
class Outcome:
    benchmark: str
    description: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    seconds: float = 0.0


def run_one(
    benchmark: Benchmark,
    workdir: Path,
    *,
    quick: bool,
    log: Callable[[str], None],
    time_budget_s: float = 300.0,
) -> Outcome:
    """Run one benchmark; whatever it started is stopped before this returns or raises (also
    on Ctrl-C, which propagates after the cleanup)."""
    outcome = Outcome(benchmark.name, benchmark.description)
    started = time.monotonic()
    log(f"[{benchmark.name}] {benchmark.description}")
    try:
        with contextlib.ExitStack() as cleanup:
            workdir.mkdir(parents=True, exist_ok=True)
            ctx = BenchContext(workdir, quick, cleanup, log, time_budget_s)
            outcome.rows = benchmark.run(ctx)
    except BenchSkippedError as exc:
        outcome.skipped = str(exc)
    except (BenchError, OSError, ValueError, RuntimeError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        log(traceback.format_exc().rstrip())
    outcome.seconds = time.monotonic() - started
    log(f"[{benchmark.name}] done in {outcome.seconds:.1f} s")
    return outcome
