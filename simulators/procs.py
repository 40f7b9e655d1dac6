"""Collector and simulator processes, started from the installed code, for tests, bench and demo.

Each runs as ``python -m …`` of the same interpreter, logs to a file, and can be stopped cleanly
(SIGTERM), killed (SIGKILL), or frozen and thawed (SIGSTOP / SIGCONT).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.broker import free_port


class ProcessError(RuntimeError):
    pass


@dataclass
class ManagedProcess:
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        if self.running:
            raise ProcessError(f"{self.argv[2]} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, *self.argv],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProcessError("not started")
        return self._process.pid

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait: the clean shutdown path."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: a crash or a power cut, as far as the process can tell."""
        return self._end(signal.SIGKILL, 10.0)

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _signal(self, signum: signal.Signals) -> None:
        if not self.running:
            raise ProcessError(f"{self.argv[2]} is not running")
        assert self._process is not None
        self._process.send_signal(signum)

    def _end(self, signum: signal.Signals, timeout: float) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
                process.send_signal(signum)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode


def http_json(url: str, *, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """GET (or POST ``body``) and decode JSON; raises for HTTP errors and unreachable hosts."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def http_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        text: str = response.read().decode()
        return text


class CollectorProcess(ManagedProcess):
    def __init__(
        self,
        broker_url: str,
        data_dir: Path,
        *,
        port: int | None = None,
        client_id: str = "custos-collector",
        extra: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        super().__init__(
            argv=[
                "-m",
                "collector.cli",
                "serve",
                "--broker",
                broker_url,
                "--http",
                f"127.0.0.1:{self.port}",
                "--data",
                str(data_dir),
                "--client-id",
                client_id,
                *(extra or []),
            ],
            log_path=data_dir.parent / f"{data_dir.name}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until ``/healthz`` answers 200 (database writer up, MQTT sessions connected)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.running:
                raise ProcessError(f"the collector exited; log:\n{self.log_text()[-3000:]}")
            try:
                http_json(f"{self.url}/healthz", timeout=2.0)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
                time.sleep(0.1)
            else:
                return
        raise ProcessError(f"the collector was not healthy within {timeout} s ({last})")


class SimProcess(ManagedProcess):
    def __init__(
        self,
        broker_url: str,
        collector_url: str,
        data_dir: Path,
        *,
        rooms: int = 1,
        site: str = "sim",
        scenario: str | None = None,
        extra: list[str] | None = None,
    ) -> None:
        argv = [
            "-m",
            "simulators.cli",
            "run",
            "--broker",
            broker_url,
            "--collector",
            collector_url,
            "--data",
            str(data_dir),
            "--rooms",
            str(rooms),
            "--site",
            site,
        ]
        if scenario:
            argv += ["--scenario", scenario]
        super().__init__(
            argv=argv + (extra or []), log_path=data_dir.parent / f"{data_dir.name}.log"
        )
        self.data_dir = data_dir
