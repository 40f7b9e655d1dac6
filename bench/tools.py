"""Command-line tools started by a benchmark (``mosquitto_pub``, ``mosquitto_sub``, scripts):
each one registered for cleanup, each wait bounded in time."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bench.core import BenchError


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BenchError(f"{tool} is not installed (Debian: apt-get install mosquitto-clients)")
    return path


def spawn(
    cleanup: contextlib.ExitStack,
    argv: Sequence[str],
    *,
    log_path: Path,
    stdin_path: Path | None = None,
    stdout: int | IO[bytes] = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (a Ctrl-C in the terminal reaches only us; we stop it),
    stderr appended to ``log_path``; killed at cleanup if still running."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        stdin = files.enter_context(stdin_path.open("rb")) if stdin_path else subprocess.DEVNULL
        log = files.enter_context(log_path.open("ab"))
        process = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=log,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    cleanup.callback(end, process)
    return process


def end(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a tool if it still runs (SIGTERM, then SIGKILL) and reap it."""
    if process.returncode is not None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_all(processes: Sequence[subprocess.Popen[bytes]], deadline: float, what: str) -> None:
    """Until every process has exited with status 0; ``BenchError`` otherwise or at deadline."""
    for process in processes:
        try:
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what} still running at the deadline") from None
        if code != 0:
            raise BenchError(f"{what} exited with status {code}: {process.args!r}")


def wait_with_rusage(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int, resource.struct_rusage]:
    """Wait for the child and return its exit code and its own resource usage (``wait4``)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            code = os.waitstatus_to_exitcode(status)
            process.returncode = code
            return code, usage
        if time.monotonic() > deadline:
            end(process)
            raise BenchError(f"{process.args!r} did not finish within {timeout:g} s")
        time.sleep(0.002)


def cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime
