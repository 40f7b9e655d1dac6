"""A collector killed (SIGKILL) in the middle of an upload: the agent resumes from the durable
offset the restarted collector reports on ``HEAD`` — it does not start over — and the stored file
is intact. Real Mosquitto, the collector as a process, a room recording real H.264/AAC with the
upload bandwidth limited so an upload takes seconds."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import Path

import aiohttp
import pytest

from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess
from simulators.site import enroll_rooms
from tests.helpers import eventually
from tests.upload_support import DEVICE, catalog_rows, recording_room

CHUNK = 16 * 1024

RESUMED = re.compile(r"upload\.resumed stream=(\S+) seq=(\d+) offset=(\d+) size=(\d+)")
RECEIPTED = re.compile(r"upload\.receipted stream=(\S+) seq=(\d+) size=(\d+) sent=(\d+) ")


async def test_a_collector_killed_mid_upload_is_resumed_from_its_head_offset(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.upload")
    process = CollectorProcess(broker.url, tmp_path / "collector")
    process.start()
    try:
        await asyncio.to_thread(process.wait_healthy)
        room = recording_room(
            broker.url,
            process.url,
            tmp_path / DEVICE,
            segment_s=4.0,
            upload={"bandwidth_bytes_per_s": 16 * 1024, "chunk_bytes": CHUNK},
        )
        await enroll_rooms([room], process.url)
        await room.start()
        try:
            room.act("door.open")
            uploader = room.agent.state.spool.uploader  # type: ignore[union-attr]
            assert uploader is not None

            async def halfway() -> tuple[str, int, int] | None:
                now = uploader.current
                if now is None or not CHUNK <= now.offset < now.size - CHUNK:
                    return None
                return now.stream, now.seq, now.offset

            stream, seq, durable = await eventually(
                halfway, timeout=60, interval=0.01, what="an upload past its first chunk"
            )
            await asyncio.to_thread(process.kill)  # mid-PATCH: the next chunk is on its way
            await asyncio.sleep(1.0)
            process.start()
            await asyncio.to_thread(process.wait_healthy)

            async def receipted() -> bool:
                rows = catalog_rows(tmp_path / DEVICE)
                return any((r.stream, r.seq, r.state) == (stream, seq, "receipted") for r in rows)

            await eventually(receipted, timeout=60, what=f"{stream}/{seq} receipted")
        finally:
            await room.stop()
        row = next(r for r in catalog_rows(tmp_path / DEVICE) if (r.stream, r.seq) == (stream, seq))
        url = f"{process.url}/api/v1/segments/{DEVICE}/{stream}/{seq}/content"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            stored = await response.read()
    finally:
        process.kill()

    resumed = [
        (int(m[3]), int(m[4]))
        for m in map(RESUMED.match, caplog.messages)
        if m and (m[1], int(m[2])) == (stream, seq)
    ]
    assert resumed, "the upload was not resumed from a HEAD offset"
    offset, size = resumed[-1]
    assert offset >= durable > 0  # at least what the killed collector had made durable
    sent = [
        int(m[4])
        for m in map(RECEIPTED.match, caplog.messages)
        if m and (m[1], int(m[2])) == (stream, seq)
    ]
    assert sent == [size - offset]  # only the rest went again, not the whole file
    assert sent[0] < size
    assert row.sha256 == hashlib.sha256(stored).hexdigest()
    local = tmp_path / DEVICE / "spool" / stream / f"{seq:010d}.ts"
    assert stored == local.read_bytes()
