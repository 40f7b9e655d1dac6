"""The PATCH body pipeline on its own, behind a real HTTP server: whatever the offset and the
buffer size, the file receives exactly the body's bytes at the right place and the hash covers
exactly them; with ``O_DIRECT`` and through the page cache."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from collector.evidence.stream import BLOCK, BufferPool, PartFile, Received, receive
from tests.helpers import eventually
from tests.test_evidence_support import segment_bytes


@asynccontextmanager
async def server(
    path: Path,
    position: int,
    limit: int,
    pool_size: int,
    results: list[tuple[Received, bytes]],
    *,
    direct: bool = True,
) -> AsyncIterator[int]:
    """An HTTP server whose one route feeds its body to ``receive`` into ``path``."""
    executor = ThreadPoolExecutor(3)

    async def handler(request: web.Request) -> web.Response:
        part = PartFile(path, direct=direct)
        assert part.direct == direct
        hasher = hashlib.sha256()
        try:
            received = await receive(
                request.content, part, position, [hasher], limit,
                pool=BufferPool(pool_size), executor=executor,
            )  # fmt: skip
            assert part.direct == direct, "no direct write was refused as misaligned"
        finally:
            part.close()
        results.append((received, hasher.digest()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_put("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
        executor.shutdown()


@pytest.mark.parametrize(
    ("prefix", "pool_size"),
    [
        (0, BLOCK * 4),
        (1, BLOCK * 4),
        (BLOCK - 1, BLOCK * 16),
        (3 * BLOCK + 5, BLOCK),
        (12_345, BLOCK * 256),
    ],
)
async def test_bytes_land_at_their_offset_whatever_the_alignment(
    tmp_path: Path, prefix: int, pool_size: int
) -> None:
    body = segment_bytes(300_000 + prefix, seed=prefix)
    head = segment_bytes(prefix, seed=99)
    for direct in (True, False):
        path = tmp_path / f"custos-test-{prefix}-{pool_size}.part"
        path.write_bytes(head)
        results: list[tuple[Received, bytes]] = []
        try:
            async with (
                server(path, prefix, len(body), pool_size, results, direct=direct) as port,
                aiohttp.ClientSession() as http,
                http.put(f"http://127.0.0.1:{port}/", data=body) as response,
            ):
                assert response.status == 204
            ((received, digest),) = results
            assert (received.count, received.overflow, received.error) == (len(body), False, None)
            assert path.read_bytes() == head + body, direct
            assert digest == hashlib.sha256(body).digest()
        finally:
            path.unlink()


async def test_a_body_past_the_limit_is_reported_as_overflow(tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(b"")
    results: list[tuple[Received, bytes]] = []
    async with (
        server(path, 0, 35_000, BLOCK, results) as port,
        aiohttp.ClientSession() as http,
        http.put(f"http://127.0.0.1:{port}/", data=segment_bytes(40_000)) as response,
    ):
        assert response.status == 204
    ((received, _),) = results
    assert received.overflow
    assert received.count <= 35_000


async def test_a_client_gone_mid_body_leaves_exactly_the_bytes_consumed(tmp_path: Path) -> None:
    body = segment_bytes(2_000_000)
    path = tmp_path / "x.part"
    path.write_bytes(b"")
    results: list[tuple[Received, bytes]] = []

    def send_part(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(
                f"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body[:1_234_567]
            )

    async with server(path, 0, len(body), BLOCK * 64, results) as port:
        await asyncio.to_thread(send_part, port)
        await eventually(lambda: asyncio.sleep(0, bool(results)), what="the cut body")
    ((received, digest),) = results
    assert received.error is not None
    assert 0 < received.count <= 1_234_567
    assert path.read_bytes() == body[: received.count]
    assert digest == hashlib.sha256(body[: received.count]).digest()
