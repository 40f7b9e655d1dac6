"""``custos-bench`` (or ``python -m bench``): run the benchmarks, print one table, write JSON."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.procstat import load_average
from bench.report import RunInfo, document, table, write_json
from bench.runner import Outcome, discover, run_one, select


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custos-bench",
        description="Run the Custos benchmarks: each prints a project figure, a physical "
        "reference measured in the same run, their ratio and the goal.",
    )
    parser.add_argument(
        "--only", metavar="NAME[,NAME]", default="", help="run only these benchmarks (see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts: a smoke check, not a measurement"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="directory for the JSON results (default %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (logs, databases)"
    )
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    available = discover()
    if args.list:
        for benchmark in available:
            print(f"{benchmark.name:<16} {benchmark.description}")
        return 0
    try:
        chosen = select(available, [name for name in args.only.split(",") if name])
    except ValueError as exc:
        print(f"custos-bench: {exc}", file=sys.stderr)
        return 2
    # SIGTERM (and a closed terminal) unwind like Ctrl-C: every process started gets stopped.
    # SIGINT too, even when started from a shell that ignores it for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    started_at = datetime.now(UTC)
    load_before = load_average()
    workroot = Path(tempfile.mkdtemp(prefix="custos-bench-"))
    outcomes: list[Outcome] = []

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        for benchmark in chosen:
            outcomes.append(
                run_one(benchmark, workroot / benchmark.name, quick=args.quick, log=log)
            )
    except KeyboardInterrupt:
        print("custos-bench: interrupted; everything started was stopped", file=sys.stderr)
        shutil.rmtree(workroot, ignore_errors=True)
        return 130
    failed = any(outcome.error for outcome in outcomes)
    if args.keep or failed:
        log(f"working files kept in {workroot}")
    else:
        shutil.rmtree(workroot, ignore_errors=True)
    info = RunInfo(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        quick=args.quick,
        argv=list(argv if argv is not None else sys.argv[1:]),
        load_before=load_before,
        load_after=load_average(),
    )
    path = write_json(args.out, document(outcomes, info), started_at)
    print(table(outcomes))
    print(
        f"\nresults: {path}" + ("  (quick: a smoke check, not a measurement)" if args.quick else "")
    )
    return 1 if failed else 0
