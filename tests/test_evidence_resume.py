"""Uploads survive a collector restart: the offset reported by HEAD is durable, the running hash
is rebuilt from disk, and an upload whose last step was cut off is finished at start."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp
from tusclient import client as tus_client
from tusclient.uploader.uploader import Uploader

from collector.evidence.receipts import RECEIPT_HEADER, read_header
from simulators.broker import MosquittoBroker
from tests.helpers import running_collector
from tests.test_evidence_support import (
    TUS,
    UPLOADS,
    DeviceKey,
    Stream,
    create_upload,
    enroll,
    patch,
    segment_bytes,
)


async def test_an_upload_resumes_by_head_offset_after_the_collector_restarts(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "collector"
    data = segment_bytes(5_000_000, seed=7)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with running_collector(broker.url, data_dir) as first, aiohttp.ClientSession() as http:
        await enroll(first, "ir-101")
        location = (await create_upload(http, first.url, signed)).headers["Location"]
        response = await patch(http, f"{first.url}{location}", 0, data[:3_000_000])
        assert response.status == 204
        assert response.headers["Upload-Offset"] == "3000000"

    async with running_collector(broker.url, data_dir) as second, aiohttp.ClientSession() as http:
        url = f"{second.url}{location}"
        async with http.head(url, headers=TUS) as response:
            assert response.status == 200
            assert response.headers["Upload-Offset"] == "3000000"
            assert response.headers["Upload-Length"] == str(len(data))
            assert response.headers["Cache-Control"] == "no-store"
        done = await patch(http, url, 3_000_000, data[3_000_000:])
        assert done.status == 204, done.reason
        receipt = read_header(done.headers[RECEIPT_HEADER]).parsed()
        async with http.get(f"{second.url}/api/v1/segments/ir-101/cam1/1/content") as response:
            assert await response.read() == data
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()


async def test_tuspy_resumes_an_upload_begun_before_a_restart(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "collector"
    data = segment_bytes(2_500_000, seed=8)
    signed = Stream("ir-101", DeviceKey()).next(data)
    source = tmp_path / "segment.ts"
    source.write_bytes(data)
    async with running_collector(broker.url, data_dir) as first:
        await enroll(first, "ir-101")
        uploader = Uploader(
            file_path=str(source),
            client=tus_client.TusClient(f"{first.url}{UPLOADS}"),
            chunk_size=1_000_000,
            metadata={"manifest": signed.model_dump_json()},
        )
        await asyncio.to_thread(uploader.upload, 1_000_000)
        assert uploader.url is not None
        path = uploader.url.removeprefix(first.url)

    async with running_collector(broker.url, data_dir) as second:
        resumed = await asyncio.to_thread(  # asks HEAD for the offset: blocking
            Uploader, file_path=str(source), url=f"{second.url}{path}", chunk_size=1_000_000
        )
        assert resumed.offset == 1_000_000
        await asyncio.to_thread(resumed.upload)
        assert resumed.request is not None
        assert "custos-receipt" in resumed.request.response_headers
        stored = second.query("SELECT sha256, chain FROM evidence_segments")
    assert stored == [(hashlib.sha256(data).hexdigest(), "start")]


async def test_an_upload_moved_into_the_store_but_not_recorded_is_finished_at_start(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A crash between the rename into the store and the database record: the next start
    verifies the stored file and records it, so the agent's HEAD/PATCH gets its receipt."""
    data_dir = tmp_path / "collector"
    data = segment_bytes(300_000, seed=9)
    signed = Stream("ir-101", DeviceKey()).next(data)
    digest = hashlib.sha256(data).hexdigest()
    async with running_collector(broker.url, data_dir) as first, aiohttp.ClientSession() as http:
        await enroll(first, "ir-101")
        location = (await create_upload(http, first.url, signed)).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    target = data_dir / "evidence" / "sha256" / digest[:2] / digest[2:4] / digest
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    os.unlink(data_dir / "uploads" / f"{upload_id}.part")

    async with running_collector(broker.url, data_dir) as second, aiohttp.ClientSession() as http:
        async with http.head(f"{second.url}{location}", headers=TUS) as response:
            assert response.headers["Upload-Offset"] == str(len(data))
            assert read_header(response.headers[RECEIPT_HEADER]).parsed().sha256 == digest
        async with http.get(f"{second.url}{UPLOADS}/{upload_id}/receipt") as response:
            assert response.status == 200
            assert response.headers[RECEIPT_HEADER]
        finished = await patch(http, f"{second.url}{location}", len(data), b"")
        assert finished.status == 204
        assert finished.headers[RECEIPT_HEADER]


async def test_an_upload_whose_last_byte_arrived_before_a_crash_is_verified_at_start(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The partial file is complete (the last PATCH was fdatasynced) but the collector died
    before verifying it: the next start verifies and stores it."""
    data_dir = tmp_path / "collector"
    data = segment_bytes(123_456, seed=10)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with running_collector(broker.url, data_dir) as first, aiohttp.ClientSession() as http:
        await enroll(first, "ir-101")
        location = (await create_upload(http, first.url, signed)).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    (data_dir / "uploads" / f"{upload_id}.part").write_bytes(data)

    async with running_collector(broker.url, data_dir) as second, aiohttp.ClientSession() as http:
        async with http.head(f"{second.url}{location}", headers=TUS) as response:
            assert response.headers["Upload-Offset"] == str(len(data))
            assert RECEIPT_HEADER in response.headers
        assert second.query("SELECT state FROM evidence_uploads") == [("complete",)]
        assert second.query("SELECT sha256 FROM evidence_segments") == [
            (hashlib.sha256(data).hexdigest(),)
        ]
