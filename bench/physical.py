"""What the machine itself manages for each stage of an upload, measured with plain tools:
hashing (``openssl speed``), writing durably (``dd … conv=fdatasync``) and moving bytes over
loopback (a socket pair, ``sendfile`` into ``recv_into``). Each returns bytes per second.

Every process is started with ``bench.tools.spawn`` (on the cleanup stack) and waited for with a
deadline; the loopback pair is two threads of this process, bounded by socket timeouts.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

from bench.core import BenchContext, BenchError
from bench.tools import require, spawn, wait_all

_OPENSSL_RATE = re.compile(r"^sha256\s+([0-9.]+)k\s*$", re.MULTILINE)
_DD_RESULT = re.compile(r"^(\d+) bytes .* copied, ([0-9.]+) s", re.MULTILINE)


def sha256_rate(ctx: BenchContext, *, block: int, seconds: int) -> float:
    """``openssl speed -evp sha256`` on blocks of ``block`` bytes: the same OpenSSL code that
    Python's ``hashlib`` calls, on one core."""
    out = ctx.workdir / "openssl-speed.txt"
    with out.open("wb") as stdout:
        process = spawn(
            ctx.cleanup,
            [require("openssl"), "speed", "-seconds", str(seconds), "-bytes", str(block),
             "-evp", "sha256"],
            log_path=ctx.workdir / "tools.log",
            stdout=stdout,
        )  # fmt: skip
        wait_all([process], time.monotonic() + seconds + 30, "openssl speed")
    match = _OPENSSL_RATE.search(out.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        raise BenchError(f"cannot read openssl speed's answer in {out}")
    return float(match.group(1)) * 1000.0  # openssl prints thousands of bytes per second


def disk_rate(ctx: BenchContext, directory: Path, mib: int, *, direct: bool = False) -> float:
    """``dd if=/dev/zero of=DIR/… bs=1M count=N conv=fdatasync``: writing through the page cache
    and making it durable, in the directory the collector stores into; with ``direct``, also
    ``oflag=direct`` (past the page cache, as the collector writes uploads)."""
    target = directory / "bench-dd.tmp"
    log = ctx.workdir / "dd.log"
    log.write_bytes(b"")
    process = spawn(
        ctx.cleanup,
        [
            require("dd"), "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}",
            "conv=fdatasync", *(["oflag=direct"] if direct else []),
        ],
        log_path=log,
    )  # fmt: skip
    try:
        wait_all([process], time.monotonic() + 120, "dd")
    finally:
        target.unlink(missing_ok=True)
    match = _DD_RESULT.search(log.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        raise BenchError(f"cannot read dd's answer in {log}")
    return int(match.group(1)) / float(match.group(2))


def loopback_rate(path: Path, *, timeout_s: float = 60.0) -> float:
    """``sendfile`` of ``path`` (in the page cache) over a loopback TCP connection into a thread
    that ``recv_into``s a reused buffer and throws it away: the transport alone."""
    size = path.stat().st_size
    received: list[float] = []
    errors: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(timeout_s)
        port = server.getsockname()[1]

        def receive() -> None:
            try:
                connection, _ = server.accept()
                with connection:
                    connection.settimeout(timeout_s)
                    view = memoryview(bytearray(1024 * 1024))
                    total = 0
                    while count := connection.recv_into(view):
                        total += count
                    received.extend((float(total), time.monotonic()))
            except OSError as exc:
                errors.append(exc)

        thread = threading.Thread(target=receive, name="loopback-receiver", daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sender:
            started = time.monotonic()
            with path.open("rb") as source:
                sender.sendfile(source)
        thread.join(timeout_s)
    if errors or not received or thread.is_alive():
        raise BenchError(f"the loopback pair failed: {errors[0] if errors else 'no answer'}")
    total, finished = received
    if int(total) != size:
        raise BenchError(f"the loopback pair moved {int(total)} of {size} bytes")
    return total / (finished - started)
