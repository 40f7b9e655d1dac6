"""Damaged bytes never become evidence: a bit flipped on the wire is refused by the collector and
sent again; a bit flipped in the agent's spool is found by the agent, reported as
``segment.corrupt`` (an alarm) and never uploaded as good. Real Mosquitto, real collector, real
HTTP through a proxy that damages bytes, a room recording real H.264/AAC."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from simulators.broker import MosquittoBroker, free_port
from simulators.netproxy import TcpProxy
from simulators.site import enroll_rooms
from tests.helpers import RunningCollector, eventually, metric_value
from tests.upload_support import DEVICE, catalog_rows, flip_byte, recording_room


def _proxy_to(collector: RunningCollector, listen_port: int = 0) -> TcpProxy:
    target = urlsplit(collector.url)
    assert target.hostname is not None and target.port is not None
    return TcpProxy(target.hostname, target.port, listen_port=listen_port)


async def _stored(collector: RunningCollector, stream: str, seq: int) -> bytes:
    url = f"{collector.url}/api/v1/segments/{DEVICE}/{stream}/{seq}/content"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, f"{stream}/{seq} is not stored"
        return await response.read()


async def test_a_bit_flipped_in_transit_is_refused_by_the_collector_and_sent_again(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    proxy = _proxy_to(collector)
    await proxy.start()
    room = recording_room(
        broker.url,
        f"http://127.0.0.1:{proxy.listen_port}",
        tmp_path / DEVICE,
        segment_s=4.0,
        upload={"bandwidth_bytes_per_s": 16 * 1024},  # a body takes seconds: easy to hit
    )
    await enroll_rooms([room], collector.url)
    await room.start()
    try:
        room.act("door.open")
        uploader = room.agent.state.spool.uploader  # type: ignore[union-attr]
        assert uploader is not None
        await eventually(
            lambda: asyncio.sleep(0, uploader.current is not None and uploader.current.sent > 0),
            timeout=60,
            what="a PATCH body on its way",
        )
        await asyncio.sleep(0.3)  # well inside the body: it takes over a second at 16 KiB/s
        proxy.flip_offset = proxy.upstream_bytes + 2_000
        await eventually(
            lambda: asyncio.sleep(0, proxy.flip_offset is None), what="the byte flipped"
        )
        metrics = await eventually(
            lambda: _metric_at_least(collector, "checksum_mismatch", 1), what="a refused chunk"
        )

        async def four_receipted() -> bool:
            return sum(r.state == "receipted" for r in catalog_rows(tmp_path / DEVICE)) >= 4

        await eventually(four_receipted, timeout=60, what="four segments receipted")
    finally:
        await room.stop()
        await proxy.close()
    assert metric_value(metrics, "custos_upload_errors_total", 'reason="checksum_mismatch"') == 1
    rows = [r for r in catalog_rows(tmp_path / DEVICE) if r.state == "receipted"]
    for row in rows:  # including the one whose chunk was damaged, sent again whole
        stored = await _stored(collector, row.stream, row.seq)
        assert hashlib.sha256(stored).hexdigest() == row.sha256
        local = tmp_path / DEVICE / "spool" / row.stream / f"{row.seq:010d}.ts"
        assert stored == local.read_bytes()


async def _metric_at_least(collector: RunningCollector, reason: str, count: int) -> str | None:
    text = await collector.metrics()
    labels = f'reason="{reason}"'
    return text if metric_value(text, "custos_upload_errors_total", labels) >= count else None


async def test_a_bit_flipped_in_the_spool_is_reported_as_corrupt_and_never_uploaded_as_good(
    broker: MosquittoBroker,
    collector: RunningCollector,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.upload")
    port = free_port()  # the collector's HTTP side is not reachable yet: nothing uploads
    room = recording_room(
        broker.url, f"http://127.0.0.1:{port}", tmp_path / DEVICE, upload={"retry_max_s": 1.0}
    )
    await enroll_rooms([room], collector.url)
    await room.start()
    proxy = _proxy_to(collector, listen_port=port)
    try:
        room.act("door.open")

        async def announced() -> list[tuple[str, int]] | None:
            rows = catalog_rows(tmp_path / DEVICE)
            ready = [(r.stream, r.seq) for r in rows if r.state == "announced"]
            return ready if len(ready) >= 6 else None

        ready = await eventually(announced, timeout=60, what="six segments announced")
        victim = ready[2]
        path = tmp_path / DEVICE / "spool" / victim[0] / f"{victim[1]:010d}.ts"
        flip_byte(path, path.stat().st_size // 2)
        await proxy.start()  # the collector is reachable from now on

        async def settled() -> bool:
            rows = {(r.stream, r.seq): r.state for r in catalog_rows(tmp_path / DEVICE)}
            others = [key for key in ready if key != victim]
            return rows[victim] == "corrupt" and all(rows[k] == "receipted" for k in others)

        await eventually(settled, timeout=60, what="the others receipted, the victim corrupt")

        async def reported() -> dict[str, object] | None:
            events = await collector.events(DEVICE)
            return next((e for e in events if e["type"] == "segment.corrupt"), None)

        event = await eventually(reported, timeout=30, what="segment.corrupt at the collector")
    finally:
        await room.stop()
        await proxy.close()
    row = next(r for r in catalog_rows(tmp_path / DEVICE) if (r.stream, r.seq) == victim)
    assert event["alarm"] is True
    body = event["body"]
    assert isinstance(body, dict)
    assert (body["stream"], body["seq"]) == victim
    assert body["expected_sha256"] == row.sha256
    assert body["actual_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row.receipt is None
    detail = await collector.api(f"/api/v1/segments/{DEVICE}/{victim[0]}/{victim[1]}")
    assert detail["upload_state"] == "announced"  # known from its event, never stored
    stored = collector.query(
        "SELECT COUNT(*) FROM evidence_segments WHERE device_id = ? AND stream = ? AND seq = ?",
        DEVICE, *victim,
    )  # fmt: skip
    assert stored == [(0,)]
    attempts = collector.query(
        "SELECT COUNT(*) FROM evidence_uploads WHERE device_id = ? AND stream = ? AND seq = ?",
        DEVICE, *victim,
    )  # fmt: skip
    assert attempts == [(0,)]  # found before uploading: not one byte of it was sent
    assert any(m.startswith("upload.segment_corrupt") for m in caplog.messages)
