"""The link's wake-up of its network thread: a message queued while the thread reads its wake-up
bytes must never leave the link believing a wake-up is on its way when none is (every later
publish would then wait for the idle timeout, up to a second for an alarm)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable

from edge_agent.bridge import ThreadBridge
from edge_agent.uplink.link import Identity, LinkEvent, LinkSettings, MqttLink
from protocol.clock import SystemClock


class _InterleavingSocket:
    """The read end of the wake-up pair, with the producer's ``publish`` landing during the
    first read: the interleaving that, on a busy machine, happens now and then."""

    def __init__(self, inner: socket.socket, on_first_read: Callable[[], None]) -> None:
        self._inner = inner
        self._on_first_read = on_first_read
        self._reads = 0

    def recv(self, size: int) -> bytes:
        self._reads += 1
        if self._reads == 1:
            self._on_first_read()
        return self._inner.recv(size)

    def close(self) -> None:
        self._inner.close()


def _wake_bytes_waiting(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


async def test_a_publish_during_the_wake_up_read_still_wakes_the_thread_next_time() -> None:
    events: ThreadBridge[LinkEvent] = ThreadBridge(asyncio.get_running_loop(), "link")
    identity = Identity("ir-101", uuid.uuid4(), 1, "0.1.0", "0" * 64)
    link = MqttLink(
        LinkSettings("127.0.0.1", 1, keepalive_s=60), identity, clock=SystemClock(), events=events
    )
    real_read_end = link._wake_r
    try:
        link._wake()  # a first publish wakes the thread
        link._wake_r = _InterleavingSocket(real_read_end, link._wake)  # type: ignore[assignment]
        link._drain_wakes()  # the thread reads, and a second publish lands meanwhile
        link._wake_r = real_read_end
        # The thread goes on to send what is queued (both messages). For the next publish to wake
        # it, either the flag is clear or a wake-up byte is really waiting.
        assert not link._wake_pending or _wake_bytes_waiting(real_read_end)
        link._wake()  # the next publish
        assert _wake_bytes_waiting(real_read_end), "the next publish must wake the thread"
    finally:
        real_read_end.close()
        link._wake_w.close()
