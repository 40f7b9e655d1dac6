"""A private Mosquitto on a free loopback port, with a generated config.

Used by the test fixtures, the benchmarks and the demo. The defaults avoid Mosquitto's
data-losing traps measured in RECIPES.md: no per-client queue limit, and, when persistence is on,
a data directory the broker can write and a short autosave interval.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """Mosquitto is missing or did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if path is None:
        raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return path


@dataclass
class MosquittoBroker:
    """One Mosquitto process. ``restart`` keeps the port, so clients reconnect to the same place."""

    directory: Path
    port: int = field(default_factory=free_port)
    persistence: bool = False
    extra_config: tuple[str, ...] = ()
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            # Started as root, Mosquitto drops to the 'mosquitto' user unless told otherwise, and
            # then cannot write our directory: stay the user who started it.
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 0",
            "max_inflight_messages 100",
        ]
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.directory}/",
                "autosave_interval 1",
            ]
        else:
            lines.append("persistence false")
        lines += list(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def start(self, timeout: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.write_config()
        log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"mosquitto exited at start; see {self.log_path}")
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), 0.2).close()
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM): Mosquitto saves its database when persistence is on."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash or a power cut would."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal_and_wait(self, signum: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
