"""Receiving a PATCH body fast.

The event loop copies the socket's chunks into one of two page-aligned buffers; each full buffer
goes to worker threads that hash it (hashlib releases the GIL on large buffers) and write it,
while the loop fills the other one. Whole 4 KiB blocks are written with ``O_DIRECT`` straight from
the buffer (no copy into the page cache, no page-cache allocation); the unaligned edges of a PATCH
go through the page cache. Nothing touches the database; the caller fdatasyncs once at the end.
Filesystems without ``O_DIRECT`` (tmpfs) get buffered writes throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import ClientPayloadError, StreamReader

if TYPE_CHECKING:
    from hashlib import _Hash

log = logging.getLogger(__name__)

BATCH_BYTES = 8 * 1024 * 1024
BLOCK = 4096


@dataclass
class Received:
    count: int
    """Bytes hashed and written, in order, from the PATCH's offset."""
    overflow: bool = False
    """The body went past the limit (nothing past it was written)."""
    error: BaseException | None = None
    """The body ended early: the client went away or sent less than it announced."""


class BufferPool:
    """Page-aligned buffers of ``size`` bytes, kept for reuse (their pages stay mapped)."""

    def __init__(self, size: int = BATCH_BYTES, keep: int = 8) -> None:
        if size % BLOCK:
            raise ValueError("the buffer size must be a multiple of the block size")
        self.size = size
        self._keep = keep
        self._free: list[mmap.mmap] = []

    def take(self) -> mmap.mmap:
        return self._free.pop() if self._free else mmap.mmap(-1, self.size)

    def give(self, buffer: mmap.mmap) -> None:
        if len(self._free) < self._keep:
            self._free.append(buffer)
        else:
            _unmap(buffer)

    def close(self) -> None:
        while self._free:
            _unmap(self._free.pop())


def _unmap(buffer: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # a view still exists: the collector unmaps it later
        buffer.close()


class PartFile:
    """An open partial upload: buffered writes, and ``O_DIRECT`` writes of aligned blocks from
    aligned memory when the filesystem allows them. Blocking methods: call from a worker."""

    def __init__(self, path: Path, *, direct: bool = True) -> None:
        self.fd = os.open(path, os.O_WRONLY)
        self._direct: int | None = None
        if direct:
            with contextlib.suppress(OSError, AttributeError):
                self._direct = os.open(path, os.O_WRONLY | os.O_DIRECT)

    @property
    def direct(self) -> bool:
        return self._direct is not None

    def write(self, view: memoryview, position: int, *, aligned: bool = False) -> None:
        """Write all of ``view`` at ``position``; ``aligned``: both are block-aligned and so is
        the memory, so the bytes may bypass the page cache."""
        if aligned and self._direct is not None:
            try:
                _pwrite_all(self._direct, view, position)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                log.warning("upload.direct_io_unsupported error=%s", exc)
                os.close(self._direct)  # not supported here after all: buffered from now on
                self._direct = None
            else:
                return
        _pwrite_all(self.fd, view, position)

    def close(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
        os.close(self.fd)


def _pwrite_all(fd: int, view: memoryview, position: int) -> None:
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def _hash(hasher: _Hash, view: memoryview) -> None:
    hasher.update(view)


class _Batches:
    """Two buffers: one filling on the loop, one being hashed and written by workers. A buffer
    holds the file range that starts at the block boundary at or before its first byte, so its
    blocks line up with the file's."""

    def __init__(
        self,
        part: PartFile,
        hashers: Sequence[_Hash],
        pool: BufferPool,
        executor: Executor,
        position: int,
    ) -> None:
        self._part = part
        self._hashers = hashers
        self._pool = pool
        self._executor = executor
        self._buffers = [pool.take(), pool.take()]
        self._views = [memoryview(buffer) for buffer in self._buffers]
        self._current = 0
        self._base = position - position % BLOCK
        self._skew = position % BLOCK
        self._fill = self._skew
        self._inflight: asyncio.Future[list[None]] | None = None

    async def add(self, data: bytes) -> None:
        source = memoryview(data)
        while source:
            room = self._pool.size - self._fill
            piece = source[:room]
            self._views[self._current][self._fill : self._fill + len(piece)] = piece
            self._fill += len(piece)
            source = source[len(piece) :]
            if self._fill == self._pool.size:
                await self.flush()

    async def flush(self) -> None:
        """Hand the filled buffer to the workers (after the previous one is done)."""
        await self.drain()
        start, end = self._skew, self._fill
        if end == start:
            return
        view, base = self._views[self._current], self._base
        loop = asyncio.get_running_loop()
        work = [
            loop.run_in_executor(self._executor, _hash, h, view[start:end]) for h in self._hashers
        ]
        work.append(loop.run_in_executor(self._executor, self._write, view, base, start, end))
        self._inflight = asyncio.gather(*work)
        self._current ^= 1
        self._base += end
        self._skew = self._fill = 0

    def _write(self, view: memoryview, base: int, start: int, end: int) -> None:
        """Write ``view[start:end]`` at file offset ``base + start``: the whole blocks within
        it directly, the partial blocks at either edge through the page cache."""
        first = -(-start // BLOCK) * BLOCK
        last = end - end % BLOCK
        if first >= last:
            self._part.write(view[start:end], base + start)
            return
        if start < first:
            self._part.write(view[start:first], base + start)
        self._part.write(view[first:last], base + first, aligned=True)
        if last < end:
            self._part.write(view[last:end], base + last)

    async def drain(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            await inflight

    async def close(self) -> None:
        try:
            await self.drain()
        finally:
            self._views.clear()
            for buffer in self._buffers:
                self._pool.give(buffer)


async def receive(
    content: StreamReader,
    part: PartFile,
    position: int,
    hashers: Sequence[_Hash],
    limit: int,
    *,
    pool: BufferPool,
    executor: Executor,
) -> Received:
    """Hash and write the body at ``position``, at most ``limit`` bytes. Errors of the file (a
    full disk) propagate; the caller decides what to keep."""
    batches = _Batches(part, hashers, pool, executor, position)
    received = Received(0)
    try:
        while True:
            try:
                data = await content.readany()
            except (OSError, ClientPayloadError, asyncio.IncompleteReadError) as exc:
                received.error = exc
                break
            if not data:
                break
            if received.count + len(data) > limit:
                received.overflow = True
                break
            await batches.add(data)
            received.count += len(data)
        if not received.overflow:
            await batches.flush()
    finally:
        await batches.close()
    return received
