"""Starting ``bench.agent_probe`` (one room's agent code in its own process) and a bare interpreter
to compare it with; sampling their memory and CPU from ``/proc``."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core import BenchContext, BenchError
from bench.procstat import rss_bytes
from bench.tools import spawn
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess

MB = 1024 * 1024


@dataclass
class AgentProbe:
    process: subprocess.Popen[bytes]
    data: Path
    ready: dict[str, Any]
    _reports: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def result(self, name: str, timeout_s: float) -> dict[str, Any]:
        return wait_json(self.data / name, self.process, timeout_s)

    def cpu_s(self, timeout_s: float = 10.0) -> float:
        """The probe's own CPU seconds (``getrusage``: microseconds, not /proc's 10 ms ticks)."""
        self._reports += 1
        path = self.data / "usage.json"
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                usage = json.loads(path.read_text(encoding="utf-8"))
                if usage["report"] >= self._reports:
                    return float(usage["cpu_s"])
            time.sleep(0.005)
        raise BenchError("the agent probe did not report its CPU time")


def start_probe(
    ctx: BenchContext,
    broker: MosquittoBroker,
    collector: CollectorProcess,
    device_id: str,
    *,
    heartbeat_s: float = 10.0,
    recorder: bool = False,
    burst: int = 0,
    dump: Path | None = None,
    timeout_s: float = 60.0,
) -> AgentProbe:
    data = ctx.subdir(f"probe-{device_id}")
    argv = [
        sys.executable,
        *("-m", "bench.agent_probe", "--broker", broker.url, "--collector", collector.url),
        *("--data", str(data), "--device", device_id, "--heartbeat", str(heartbeat_s)),
    ]
    if recorder:
        argv.append("--recorder")
    if burst:
        argv += ["--burst", str(burst)]
    if dump is not None:
        argv += ["--dump", str(dump)]
    process = spawn(ctx.cleanup, argv, log_path=data / "probe.log")
    ready = wait_json(data / "ready.json", process, timeout_s)
    return AgentProbe(process, data, ready)


def wait_json(path: Path, process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            log = path.parent / "probe.log"
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
            raise BenchError(f"the agent probe exited ({process.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"the agent probe did not write {path.name} within {timeout_s:g} s")
        time.sleep(0.02)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def start_bare_interpreter(ctx: BenchContext, timeout_s: float = 20.0) -> subprocess.Popen[bytes]:
    """The same Python, started and idle: the floor any Python agent stands on (memory)."""
    marker = ctx.workdir / "bare-ready"
    process = spawn(
        ctx.cleanup,
        [
            sys.executable,
            "-c",
            "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(600)",
            str(marker),
        ],
        log_path=ctx.workdir / "tools.log",
    )
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError("the bare interpreter did not start")
        time.sleep(0.01)
    return process


def start_heartbeat_floor(
    ctx: BenchContext, broker: MosquittoBroker, heartbeat_s: float, timeout_s: float = 20.0
) -> AgentProbe:
    """paho-mqtt alone sending the same heartbeat at the same interval (``bench.footprint_floor``):
    the CPU floor of an agent that only stays connected and reports."""
    argv = ["heartbeat", "--port", str(broker.port), "--interval", str(heartbeat_s)]
    return _start_floor(ctx, f"floor-heartbeat-{heartbeat_s:g}", argv, timeout_s)


def start_media_floor(ctx: BenchContext, timeout_s: float = 20.0) -> AgentProbe:
    """PyAV alone encoding the recording agent's streams in real time: the CPU floor of the
    recorder (``bench.footprint_floor``)."""
    return _start_floor(ctx, "floor-media", ["media"], timeout_s)


def _start_floor(ctx: BenchContext, name: str, argv: list[str], timeout_s: float) -> AgentProbe:
    data = ctx.subdir(name)
    command = [sys.executable, "-m", "bench.footprint_floor", *argv, "--data", str(data)]
    process = spawn(ctx.cleanup, command, log_path=data / "probe.log")
    return AgentProbe(process, data, wait_json(data / "ready.json", process, timeout_s))


@dataclass(frozen=True)
class Footprint:
    rss_bytes: int
    peak_rss_bytes: int
    cpu_s: float
    window_s: float

    @property
    def cpu_s_per_hour(self) -> float:
        return self.cpu_s / self.window_s * 3600


def sample(
    targets: dict[str, tuple[int, Callable[[], float]]], window_s: float, every_s: float = 1.0
) -> dict[str, Footprint]:
    """CPU over ``window_s`` and resident memory (last and highest sample) of each target:
    name → (pid, a function returning its CPU seconds)."""
    started = time.monotonic()
    cpu0 = {name: cpu() for name, (_, cpu) in targets.items()}
    peak = dict.fromkeys(targets, 0)
    while True:
        for name, (pid, _) in targets.items():
            peak[name] = max(peak[name], rss_bytes(pid))
        remaining = started + window_s - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(every_s, remaining))
    elapsed = time.monotonic() - started
    return {
        name: Footprint(rss, max(peak[name], rss), cpu() - cpu0[name], elapsed)
        for name, (pid, cpu) in targets.items()
        for rss in (rss_bytes(pid),)
    }
