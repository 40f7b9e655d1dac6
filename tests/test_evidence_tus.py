"""The tus 1.0 server: a third-party client (tuspy) uploads; every protocol error is a clear answer
and a counter, and never leaves bytes that were not acknowledged."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from tusclient import client as tus_client
from tusclient.uploader.uploader import Uploader

from collector.evidence.receipts import RECEIPT_HEADER, read_header
from tests.helpers import RunningCollector, eventually, metric_value
from tests.test_evidence_support import (
    TUS,
    UPLOADS,
    DeviceKey,
    Stream,
    create_upload,
    enroll,
    evidence_service,
    metadata,
    patch,
    segment_bytes,
    sha256_b64,
)


class Sha256Uploader(Uploader):
    """tuspy sends sha1 checksums by default; this server speaks sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def stored_file(running: RunningCollector, sha256: str) -> Path:
    return running.settings.data_dir / "evidence" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def part_file(running: RunningCollector, location: str) -> Path:
    return running.settings.data_dir / "uploads" / f"{location.rsplit('/', 1)[1]}.part"


async def head(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    async with http.head(url, headers=TUS) as response:
        return response


async def errors(running: RunningCollector, reason: str) -> float:
    return metric_value(await running.metrics(), "custos_upload_errors_total", f'reason="{reason}"')


@pytest.mark.parametrize("uploader_class", [Uploader, Sha256Uploader])
async def test_tuspy_uploads_a_segment_in_chunks_and_the_stored_copy_matches(
    collector: RunningCollector, tmp_path: Path, uploader_class: type[Uploader]
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(3_000_000 + 17)
    signed = Stream("ir-101", DeviceKey()).next(data)
    source = tmp_path / "segment.ts"
    source.write_bytes(data)
    tus = tus_client.TusClient(f"{collector.url}{UPLOADS}")
    uploader = uploader_class(
        file_path=str(source),
        client=tus,
        chunk_size=1_000_000,
        metadata={"manifest": signed.model_dump_json()},
        upload_checksum=uploader_class is Sha256Uploader,
    )
    await asyncio.to_thread(uploader.upload)

    assert uploader.request is not None
    receipt = read_header(uploader.request.response_headers["custos-receipt"]).parsed()
    assert (receipt.device_id, receipt.stream, receipt.seq) == ("ir-101", "cam1", 1)
    digest = hashlib.sha256(data).hexdigest()
    assert receipt.sha256 == digest
    stored = stored_file(collector, digest)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert stored.stat().st_mode & 0o222 == 0, "stored evidence is read-only"
    assert not part_file(collector, uploader.url).exists()
    metrics = await collector.metrics()
    assert metric_value(metrics, "custos_evidence_stored_total") == 1
    assert metric_value(metrics, "custos_upload_patches_total") == 4


async def test_options_advertises_the_extensions_and_a_wrong_version_gets_412(
    collector: RunningCollector,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{collector.url}{UPLOADS}") as response:
            assert response.status == 204
            assert response.headers["Tus-Resumable"] == "1.0.0"
            assert response.headers["Tus-Version"] == "1.0.0"
            assert response.headers["Tus-Extension"] == "creation,checksum,termination"
            assert response.headers["Tus-Checksum-Algorithm"] == "sha256"
            assert int(response.headers["Tus-Max-Size"]) == collector.settings.max_upload_bytes
        async with http.post(
            f"{collector.url}{UPLOADS}", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "1"}
        ) as response:
            assert response.status == 412
            assert response.headers["Tus-Version"] == "1.0.0"
            assert response.headers["Tus-Resumable"] == "1.0.0"
            assert (await response.json())["error"]["code"] == "unsupported_version"
    assert await errors(collector, "unsupported_version") == 1


async def test_creation_refuses_missing_malformed_or_mismatched_manifests(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(1000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    cases = [
        ({"Upload-Length": "1000"}, 400, "missing_manifest"),
        ({"Upload-Length": "1000", "Upload-Metadata": "manifest !!!"}, 400, "bad_metadata"),
        (
            {"Upload-Length": "1000", "Upload-Metadata": metadata(signed)[:-12] + "e30="},
            400,
            "bad_manifest",
        ),
        ({"Upload-Length": "999", "Upload-Metadata": metadata(signed)}, 400, "length_mismatch"),
        ({"Upload-Metadata": metadata(signed)}, 400, "missing_length"),
        ({"Upload-Length": "-5", "Upload-Metadata": metadata(signed)}, 400, "bad_length"),
        (
            {"Upload-Length": str(10 * 1024**3), "Upload-Metadata": metadata(signed)},
            413,
            "oversize",
        ),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, status, code in cases:
            async with http.post(f"{collector.url}{UPLOADS}", headers={**TUS, **headers}) as r:
                body = await r.json()
                assert (r.status, body["error"]["code"]) == (status, code), body
                assert r.headers["Tus-Resumable"] == "1.0.0"
    assert collector.query("SELECT COUNT(*) FROM evidence_uploads") == [(0,)]
    assert await errors(collector, "missing_manifest") == 1


async def test_a_chunk_with_a_wrong_checksum_gets_460_and_is_not_kept(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(200_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
        url = f"{collector.url}{location}"
        first_wrong = await patch(
            http, url, 0, data[:100_000], Upload_Checksum=f"sha256 {sha256_b64(data[1:100_001])}"
        )
        assert first_wrong.status == 460
        assert (await head(http, url)).headers["Upload-Offset"] == "0"
        ok = await patch(
            http, url, 0, data[:100_000], Upload_Checksum=f"sha256 {sha256_b64(data[:100_000])}"
        )
        assert ok.status == 204
        assert ok.headers["Upload-Offset"] == "100000"

        bad = await patch(
            http, url, 100_000, data[100_000:], Upload_Checksum=f"sha256 {sha256_b64(b'other')}"
        )
        assert bad.status == 460
        assert bad.reason == "Checksum Mismatch"
        assert (await head(http, url)).headers["Upload-Offset"] == "100000"
        assert part_file(collector, location).stat().st_size == 100_000

        sha1 = await patch(http, url, 100_000, data[100_000:], Upload_Checksum="sha1 AAAA")
        assert sha1.status == 400

        done = await patch(
            http,
            url,
            100_000,
            data[100_000:],
            Upload_Checksum=f"sha256 {sha256_b64(data[100_000:])}",
        )
        assert done.status == 204, done.reason
        assert RECEIPT_HEADER in done.headers
    assert hashlib.sha256(stored_file(collector, signed.parsed().sha256).read_bytes()).digest() == (
        hashlib.sha256(data).digest()
    )
    assert await errors(collector, "checksum_mismatch") == 2


async def test_wrong_offset_oversize_unknown_upload_and_content_type_are_refused(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(50_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
        url = f"{collector.url}{location}"
        wrong = await patch(http, url, 10, data[10:])
        assert wrong.status == 409
        assert wrong.headers["Upload-Offset"] == "0"
        too_much = await patch(http, url, 0, data + b"x")
        assert too_much.status == 413
        unknown = await patch(http, f"{collector.url}{UPLOADS}/{'0' * 32}", 0, data)
        assert unknown.status == 404
        nonsense = await patch(http, f"{collector.url}{UPLOADS}/..%2Fetc", 0, data)
        assert nonsense.status == 404
        async with http.patch(
            url, data=data, headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"}
        ) as response:
            assert response.status == 415
        assert (await head(http, url)).headers["Upload-Offset"] == "0"
        assert (await patch(http, url, 0, data)).status == 204
    for reason in ("offset_mismatch", "oversize", "unknown_upload", "bad_content_type"):
        assert await errors(collector, reason) >= 1, reason


async def test_termination_removes_an_unfinished_upload_but_never_evidence(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    stream = Stream("ir-101", DeviceKey())
    first, second = segment_bytes(10_000, 1), segment_bytes(10_000, 2)
    signed_first, signed_second = stream.next(first), stream.next(second)
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed_first)).headers["Location"]
        url = f"{collector.url}{location}"
        assert (await patch(http, url, 0, first[:5000])).status == 204
        async with http.delete(url, headers=TUS) as response:
            assert response.status == 204
        assert (await head(http, url)).status == 404
        assert not part_file(collector, location).exists()

        done = (await create_upload(http, collector.url, signed_second)).headers["Location"]
        assert (await patch(http, f"{collector.url}{done}", 0, second)).status == 204
        async with http.delete(f"{collector.url}{done}", headers=TUS) as response:
            assert response.status == 409
    assert stored_file(collector, signed_second.parsed().sha256).exists()


async def test_a_client_that_disconnects_mid_patch_keeps_only_what_was_made_durable(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(2_000_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
    url = f"{collector.url}{location}"
    split = urlsplit(collector.url)

    def send_half(checksum: bool) -> None:
        with socket.create_connection((split.hostname, split.port)) as raw:
            extra = f"Upload-Checksum: sha256 {sha256_b64(data)}\r\n" if checksum else ""
            raw.sendall(
                (
                    f"PATCH {location} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                    f"Content-Length: {len(data)}\r\n{extra}\r\n"
                ).encode()
                + data[:700_000]
            )

    async with aiohttp.ClientSession() as http:
        await asyncio.to_thread(send_half, True)
        service = evidence_service(collector)
        await _until_idle(collector, location, truncations=1)
        assert (await head(http, url)).headers["Upload-Offset"] == "0", (
            "a checksummed PATCH cut short keeps nothing"
        )

        await asyncio.to_thread(send_half, False)
        await _until_idle(collector, location, truncations=2)
        response = await head(http, url)
        kept = int(response.headers["Upload-Offset"])
        assert 0 < kept <= 700_000
        assert part_file(collector, location).read_bytes() == data[:kept]

        rest = await patch(http, url, kept, data[kept:])
        assert rest.status == 204
        assert RECEIPT_HEADER in rest.headers
    assert service.metrics.upload_errors["truncated"] == 2


async def _until_idle(running: RunningCollector, location: str, *, truncations: int) -> None:
    """Wait until the server has noticed the cut-short PATCH and finished with it."""
    upload_id = location.rsplit("/", 1)[1]
    service = evidence_service(running)
    await eventually(
        lambda: asyncio.sleep(
            0,
            service.metrics.upload_errors["truncated"] == truncations
            and upload_id not in service.uploads._busy,
        ),
        what="the cut-short PATCH to be handled",
    )


async def test_concurrent_patches_to_one_upload_one_wins_the_other_gets_423(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(4_000_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
        url = f"{collector.url}{location}"
        gate = asyncio.Event()

        async def slow_body() -> object:
            yield data[:1_000_000]
            await gate.wait()
            yield data[1_000_000:]

        headers = {
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(data)),
        }
        first = asyncio.ensure_future(http.patch(url, data=slow_body(), headers=headers))
        service = evidence_service(collector)
        upload_id = location.rsplit("/", 1)[1]
        for _ in range(200):
            if upload_id in service.uploads._busy:
                break
            await asyncio.sleep(0.01)
        second = await patch(http, url, 0, data)
        assert second.status == 423
        assert (await head(http, url)).headers["Upload-Offset"] == "0"
        gate.set()
        async with await first as response:
            assert response.status == 204
            assert RECEIPT_HEADER in response.headers


async def test_an_empty_segment_is_complete_at_creation(collector: RunningCollector) -> None:
    await enroll(collector, "ir-101")
    signed = Stream("ir-101", DeviceKey()).next(b"")
    async with aiohttp.ClientSession() as http:
        created = await create_upload(http, collector.url, signed)
        assert created.status == 201
        assert read_header(created.headers[RECEIPT_HEADER]).parsed().size == 0
        response = await head(http, f"{collector.url}{created.headers['Location']}")
        assert (response.headers["Upload-Offset"], response.headers["Upload-Length"]) == ("0", "0")
    assert stored_file(collector, hashlib.sha256(b"").hexdigest()).read_bytes() == b""
