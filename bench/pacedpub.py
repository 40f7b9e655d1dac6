"""A load offered at a fixed rate for a bounded time: pre-encoded QoS 0 PUBLISH packets (one round
of them, repeated) written to one connection by a thread, paced in 5 ms steps.

``bench.rawpub`` offers a buffer as fast as the socket takes it; here the rate is the point (twice
what the collector can ingest, say), and the round is repeated so that a minute of load does not
need a minute's worth of distinct messages in memory.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from bench.rawpub import RawPublishError, connect_packet, publish_packet

_DISCONNECT = b"\xe0\x00"
STEP_S = 0.005


@dataclass(frozen=True)
class PacedResult:
    sent: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


@dataclass
class PacedPublisher:
    """``start`` it, then ``stop`` (or let ``duration_s`` end it) and read ``result``."""

    host: str
    port: int
    messages: list[tuple[str, bytes]]
    """One round: sent in this order, again and again."""
    rate: float
    """Messages per second."""
    duration_s: float
    client_id: str = "bench-paced-publisher"
    result: PacedResult | None = None
    error: BaseException | None = None
    started_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.messages or self.rate <= 0:
            raise ValueError("a paced load needs messages and a positive rate")
        packets = [publish_packet(topic, payload) for topic, payload in self.messages]
        self._thread = threading.Thread(
            target=self._guarded, args=(packets,), name="paced-publisher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> PacedResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RawPublishError("the paced publisher did not stop")
        if self.error is not None:
            raise RawPublishError(f"the paced publisher failed: {self.error}")
        return self.result or PacedResult(0, 0.0)

    def close(self) -> None:
        """Stop without judging (for a cleanup stack)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self, packets: list[bytes]) -> None:
        try:
            self._publish(packets)
        except (OSError, RawPublishError) as exc:
            self.error = exc

    def _publish(self, packets: list[bytes]) -> None:
        with socket.create_connection((self.host, self.port), timeout=10.0) as sock:
            sock.sendall(connect_packet(self.client_id))
            connack = sock.recv(4)
            if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
                raise RawPublishError(f"broker refused the connection: {connack.hex()}")
            sent, index, count = 0, 0, len(packets)
            self.started_at = started = time.monotonic()
            deadline = started + self.duration_s
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                due = int((now - started) * self.rate) - sent
                if due > 0:
                    chunk = []
                    for _ in range(due):
                        chunk.append(packets[index])
                        index = index + 1 if index + 1 < count else 0
                    sock.sendall(b"".join(chunk))
                    sent += due
                self._stop.wait(STEP_S)
            self.result = PacedResult(sent, time.monotonic() - started)
            sock.sendall(_DISCONNECT)
