"""The one path from a capture thread to the event loop, shared by every camera and microphone.

A capture thread calls :meth:`PacketPump.post` (never blocks); a ``ThreadBridge`` carries the
packet to the loop, where one named task hands it to the sink. Overflow is counted by the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from edge_agent.bridge import ThreadBridge
from edge_agent.capture.ports import EncodedPacket, PacketSink

log = logging.getLogger(__name__)


class PacketPump:
    def __init__(self, name: str, maxsize: int = 2000) -> None:
        self.name = name
        self._maxsize = maxsize
        self._bridge: ThreadBridge[EncodedPacket] | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_packet_mono: float | None = None
        self.packets = 0

    def start(self, sink: PacketSink) -> None:
        """On the loop: start forwarding posted packets to ``sink``."""
        if self._task is not None:
            raise RuntimeError(f"pump {self.name} is already running")
        loop = asyncio.get_running_loop()
        self._bridge = ThreadBridge(loop, self.name, self._maxsize)
        self._task = loop.create_task(self._run(self._bridge, sink), name=self.name)

    def post(self, packet: EncodedPacket) -> None:
        """From any thread."""
        if self._bridge is not None:
            self._bridge.post(packet)

    @property
    def overflow(self) -> int:
        return self._bridge.overflow if self._bridge is not None else 0

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, bridge: ThreadBridge[EncodedPacket], sink: PacketSink) -> None:
        while True:
            packet = await bridge.get()
            self.last_packet_mono = packet.mono
            self.packets += 1
            try:
                sink(packet)
            except Exception:
                # A failing sink must not stop capture (the pre-roll depends on it).
                log.exception("capture.sink_failed source=%s", self.name)
