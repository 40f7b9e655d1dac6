"""A TCP proxy that can fail the way networks do: go silent (a dropped link that nobody closes),
reset every connection, or flip a byte in transit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class TcpProxy:
    target_host: str
    target_port: int
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    silent: bool = False
    """While set, bytes are read and thrown away in both directions; sockets stay open."""
    flip_offset: int | None = None
    """Flip one bit of the byte at this offset of the client→server stream (once)."""
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _upstream_bytes: int = field(default=0, init=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"mqtt://{self.listen_host}:{self.listen_port}"

    @property
    def upstream_bytes(self) -> int:
        """Bytes passed client→server so far (``flip_offset`` counts in the same stream)."""
        return self._upstream_bytes

    def reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink, upstream in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.get_running_loop().create_task(
                self._pump(source, sink, upstream=upstream), name="proxy-pump"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if self.silent:
                    continue
                if upstream:
                    data = self._maybe_flip(data)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not self.silent:  # a cut cable does not tell the other side either
                sink.transport.abort()
                self._writers.discard(sink)

    def _maybe_flip(self, data: bytes) -> bytes:
        start = self._upstream_bytes
        self._upstream_bytes += len(data)
        offset = self.flip_offset
        if offset is None or not start <= offset < self._upstream_bytes:
            return data
        self.flip_offset = None
        flipped = bytearray(data)
        flipped[offset - start] ^= 0x01
        log.info("proxy.flipped offset=%d", offset)
        return bytes(flipped)
