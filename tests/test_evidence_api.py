"""Listing, per-stream seq gaps, segment detail and download with HTTP range requests."""

from __future__ import annotations

from typing import Any

import aiohttp

from protocol.recording import StreamKind
from tests.helpers import RunningCollector
from tests.test_evidence_support import (
    T0,
    DeviceKey,
    Stream,
    enroll,
    evidence_service,
    insert_events,
    segment_bytes,
    segment_event,
    upload,
)


async def test_listing_shows_announced_and_uploaded_segments_and_gaps_per_stream(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    key = DeviceKey()
    video = Stream("ir-101", key, stream="cam1")
    audio = Stream("ir-101", key, stream="mic1", kind=StreamKind.AUDIO)
    payloads = {seq: segment_bytes(2000, seq) for seq in range(1, 9)}
    manifests = {seq: video.next(payloads[seq]) for seq in range(1, 9)}
    mic = audio.next(segment_bytes(1000, 99))
    # Seqs 3 and 6-7 were never announced nor uploaded; 1, 2, 4 are announced by events;
    # 2, 5, 8 are uploaded (5 and 8 before any event names them).
    await insert_events(
        collector,
        "ir-101",
        [(T0, segment_event(manifests[seq])) for seq in (1, 2, 4)] + [(T0, segment_event(mic))],
    )
    await evidence_service(collector).sync_now()
    async with aiohttp.ClientSession() as http:
        for seq in (2, 5, 8):
            assert (await upload(http, collector.url, manifests[seq], payloads[seq])).status == 204

    listing = await collector.api("/api/v1/segments?device=ir-101&stream=cam1")
    states = {s["seq"]: s["upload_state"] for s in listing["segments"]}
    assert states == {1: "announced", 2: "uploaded", 4: "announced", 5: "uploaded", 8: "uploaded"}
    assert [s["seq"] for s in listing["segments"]] == [1, 2, 4, 5, 8], "time order"
    announced = {s["seq"]: s["announced"] for s in listing["segments"]}
    assert announced == {1: True, 2: True, 4: True, 5: False, 8: False}

    window = await collector.api(
        "/api/v1/segments?device=ir-101&since=2026-01-05T08:00:15Z&until=2026-01-05T08:00:45Z"
    )
    assert [(s["stream"], s["seq"]) for s in window["segments"]] == [
        ("cam1", 2), ("cam1", 4), ("cam1", 5),
    ]  # fmt: skip
    uploaded_only = await collector.api("/api/v1/segments?state=uploaded")
    assert [s["seq"] for s in uploaded_only["segments"]] == [2, 5, 8]

    cam1 = await collector.api("/api/v1/segments/ir-101/cam1")
    assert (cam1["first_seq"], cam1["last_seq"]) == (1, 8)
    assert cam1["missing"] == [[3, 3], [6, 7]]
    assert cam1["missing_count"] == 3
    assert cam1["not_uploaded"] == [[1, 1], [4, 4]]
    streams = await collector.api("/api/v1/segments/ir-101")
    assert [(s["stream"], s["missing_count"]) for s in streams["streams"]] == [
        ("cam1", 3), ("mic1", 0),
    ]  # fmt: skip

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{collector.url}/api/v1/segments?since=yesterday") as response:
            assert response.status == 400
        async with http.get(f"{collector.url}/api/v1/segments/ir-101/cam9") as response:
            assert response.status == 404


async def test_detail_shows_manifest_verification_and_receipt(collector: RunningCollector) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(3000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        assert (await upload(http, collector.url, signed, data)).status == 204
    detail: dict[str, Any] = await collector.api("/api/v1/segments/ir-101/cam1/1")
    assert detail["upload_state"] == "uploaded"
    assert detail["manifest"]["sha256"] == signed.parsed().sha256
    assert detail["signed_manifest"]["signature"] == signed.signature
    assert detail["verification"]["chain"] == "start"
    assert detail["verification"]["signature"] == "ok"
    assert detail["device_key"]["public_key"] == signed.public_key
    assert '"seq":1' in detail["receipt"]["receipt"]
    assert detail["content_url"] == "/api/v1/segments/ir-101/cam1/1/content"
    assert detail["holds"] == []


async def test_download_serves_exact_ranges_and_the_whole_file(collector: RunningCollector) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(1_234_567)
    signed = Stream("ir-101", DeviceKey()).next(data)
    url = f"{collector.url}/api/v1/segments/ir-101/cam1/1/content"
    async with aiohttp.ClientSession() as http:
        assert (await upload(http, collector.url, signed, data)).status == 204
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp2t"
            assert response.headers["Accept-Ranges"] == "bytes"
            assert await response.read() == data
        for header, start, end in (
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=1234000-", 1234000, len(data) - 1),
            ("bytes=-567", len(data) - 567, len(data) - 1),
        ):
            async with http.get(url, headers={"Range": header}) as response:
                assert response.status == 206, header
                assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
                assert await response.read() == data[start : end + 1]
        async with http.get(url, headers={"Range": f"bytes={len(data) + 10}-"}) as response:
            assert response.status == 416
        async with http.get(url.replace("/1/", "/2/")) as response:
            assert response.status == 404
