"""The uploader against the real collector (real HTTP, real files, real SQLite): order, receipts
and the pinned key, refusals that leave segments in the spool, resumption, and the pieces it is
made of (bandwidth limit, receipt check, key pin)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from collector.evidence.receipts import receipt_is_valid
from edge_agent.upload.errors import KeyPinError, ReceiptRejectedError
from edge_agent.upload.keypin import CollectorKeyPin
from edge_agent.upload.pacing import RateLimiter
from edge_agent.upload.receipts import verify_receipt
from edge_agent.upload.uploader import Uploader
from protocol.events import EventBodyType
from protocol.recording import SignedReceipt
from tests.helpers import RunningCollector, eventually
from tests.test_evidence_support import TUS, create_upload, enroll, patch
from tests.upload_support import DEVICE, Spool, catalog_rows, segment_data


def _other_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@asynccontextmanager
async def running(uploader: Uploader) -> AsyncIterator[Uploader]:
    task = asyncio.create_task(uploader.run(), name="uploader")
    try:
        yield uploader
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def receipted(root: Path, count: int) -> bool:
    rows = catalog_rows(root)
    return sum(row.state == "receipted" for row in rows) >= count


async def test_every_segment_gets_a_verified_receipt_alarm_related_ones_first(
    collector: RunningCollector, tmp_path: Path
) -> None:
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    data = {("cam-1", 1): segment_data(300_000, 1), ("cam-1", 2): segment_data(5_000, 2)}
    data[("mic-1", 1)] = segment_data(40_000, 3)
    data[("cam-1", 3)] = segment_data(2_500_000, 4)  # several chunks
    for (stream, _), content in data.items():
        spool.add(stream, content)
    data[("mic-1", 2)] = segment_data(10_000, 5)
    spool.add("mic-1", data[("mic-1", 2)], alarm=True)  # the newest, but around an alarm
    events: list[EventBodyType] = []
    async with running(spool.uploader(collector.url, events, chunk_bytes=1024 * 1024)) as up:
        await eventually(lambda: receipted(root, 5), what="five receipts")
    assert events == []
    assert up.counters.receipted == 5
    assert up.counters.bytes_sent == sum(len(d) for d in data.values())
    first = spool.catalog._query("SELECT stream, seq FROM segments ORDER BY receipted_at LIMIT 1")
    assert (first[0]["stream"], first[0]["seq"]) == ("mic-1", 2)

    key = (await collector.api("/api/v1/keys/collector"))["public_key"]
    pin = root / "collector_key.b64"
    assert pin.read_text().strip() == key
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600
    async with aiohttp.ClientSession() as http:
        for row in catalog_rows(root):
            assert row.receipt is not None
            assert receipt_is_valid(SignedReceipt.model_validate_json(row.receipt), key)
            url = f"{collector.url}/api/v1/segments/{DEVICE}/{row.stream}/{row.seq}/content"
            async with http.get(url) as response:
                assert await response.read() == data[(row.stream, row.seq)]


async def test_a_receipt_signed_by_another_key_never_makes_a_segment_receipted(
    collector: RunningCollector, tmp_path: Path
) -> None:
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    spool.add("cam-1", segment_data(20_000, 1))
    (root / "collector_key.b64").write_text(_other_key() + "\n")  # pinned earlier: an impostor?
    async with running(spool.uploader(collector.url, [])) as up:
        await eventually(
            lambda: asyncio.sleep(0, up.counters.receipts_rejected == 1), what="a refused receipt"
        )
    assert up.blocked == {("cam-1", 1): "receipt_foreign_key"}
    [row] = catalog_rows(root)
    assert (row.state, row.receipt) == ("uploaded", None)  # the collector has it; no proof here
    assert (root / "spool" / "cam-1" / "0000000001.ts").exists()


async def test_refused_segments_stay_in_the_spool_and_do_not_hold_up_the_others(
    collector: RunningCollector, tmp_path: Path
) -> None:
    await enroll(collector, DEVICE)
    first = Spool(tmp_path / "first")
    first.add("cam-1", segment_data(10_000, 1))
    async with running(first.uploader(collector.url, [])):
        await eventually(lambda: receipted(tmp_path / "first", 1), what="the first cam-1/1")
    # The same device key (the same device, restored from an old backup) with another cam-1/1.
    second_root = tmp_path / "second"
    second_root.mkdir()
    shutil.copy(tmp_path / "first" / "device_key.ed25519", second_root / "device_key.ed25519")
    second = Spool(second_root)
    second.add("cam-1", segment_data(10_000, 2))
    second.add("cam-1", segment_data(10_000, 3))
    second.add("mic-1", segment_data(10_000, 4))
    async with running(second.uploader(collector.url, [])) as up:
        await eventually(lambda: receipted(second_root, 1), what="mic-1/1 receipted")
        await eventually(lambda: asyncio.sleep(0, len(up.blocked) == 2), what="two refusals")
    assert up.blocked == {("cam-1", 1): "segment_conflict", ("cam-1", 2): "chain_mismatch"}
    assert up.counters.refused == {"segment_conflict": 1, "chain_mismatch": 1}
    states = {(row.stream, row.seq): row.state for row in catalog_rows(second_root)}
    assert states == {
        ("cam-1", 1): "announced",
        ("cam-1", 2): "announced",
        ("mic-1", 1): "receipted",
    }
    assert all((second_root / "spool" / "cam-1" / f"{s:010d}.ts").exists() for s in (1, 2))


async def test_an_upload_the_collector_no_longer_knows_is_started_again(
    collector: RunningCollector, tmp_path: Path
) -> None:
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    spool.add("cam-1", segment_data(50_000, 1))
    spool.catalog.set_upload_url("cam-1", 1, "/api/v1/uploads/" + "0" * 32)  # expired, say
    async with running(spool.uploader(collector.url, [])):
        await eventually(lambda: receipted(root, 1), what="a receipt")


async def test_an_upload_begun_earlier_resumes_from_the_collectors_durable_offset(
    collector: RunningCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.upload")
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    data = segment_data(400_000, 1)
    segment = spool.add("cam-1", data)
    assert segment.manifest is not None
    async with aiohttp.ClientSession() as http:  # a previous run got 150 000 bytes across
        location = (await create_upload(http, collector.url, segment.manifest)).headers["Location"]
        assert (await patch(http, f"{collector.url}{location}", 0, data[:150_000])).status == 204
    spool.catalog.set_upload_url("cam-1", 1, location)
    async with running(spool.uploader(collector.url, [], chunk_bytes=64 * 1024)) as up:
        await eventually(lambda: receipted(root, 1), what="a receipt")
    assert up.counters.bytes_sent == 250_000
    assert up.counters.resumed == 1
    assert "upload.resumed stream=cam-1 seq=1 offset=150000 size=400000" in caplog.messages
    async with aiohttp.ClientSession() as http:
        url = f"{collector.url}/api/v1/segments/{DEVICE}/cam-1/1/content"
        async with http.get(url, headers=TUS) as response:
            assert await response.read() == data


async def test_receipts_are_checked_for_key_signature_and_segment(
    collector: RunningCollector, tmp_path: Path
) -> None:
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    one = spool.add("cam-1", segment_data(1_000, 1))
    two = spool.add("cam-1", segment_data(1_000, 2))
    async with running(spool.uploader(collector.url, [])):
        await eventually(lambda: receipted(root, 2), what="two receipts")
    key = (await collector.api("/api/v1/keys/collector"))["public_key"]
    rows = catalog_rows(root)
    assert rows[0].receipt is not None and one.manifest is not None and two.manifest is not None
    signed = SignedReceipt.model_validate_json(rows[0].receipt)
    verify_receipt(signed, collector_key_b64=key, manifest=one.manifest)
    with pytest.raises(ReceiptRejectedError) as mismatch:
        verify_receipt(signed, collector_key_b64=key, manifest=two.manifest)
    assert mismatch.value.reason == "mismatch"
    with pytest.raises(ReceiptRejectedError) as foreign:
        verify_receipt(signed, collector_key_b64=_other_key(), manifest=one.manifest)
    assert foreign.value.reason == "foreign_key"
    forged = signed.model_copy(update={"receipt": signed.receipt.replace('"seq":1', '"seq":2')})
    with pytest.raises(ReceiptRejectedError) as bad:
        verify_receipt(forged, collector_key_b64=key, manifest=two.manifest)
    assert bad.value.reason == "bad_signature"


async def test_the_collector_key_is_pinned_once_and_a_broken_pin_is_never_replaced(
    tmp_path: Path,
) -> None:
    fetched: list[str] = []
    key = _other_key()

    async def fetch() -> str:
        fetched.append(key)
        return key

    pin = CollectorKeyPin(tmp_path / "collector_key.b64")
    assert await pin.get(fetch) == key
    assert await CollectorKeyPin(tmp_path / "collector_key.b64").get(fetch) == key
    assert fetched == [key]  # the second instance read the pin; nothing fetched again
    assert os.listdir(tmp_path) == ["collector_key.b64"]  # no temporary file left behind

    (tmp_path / "collector_key.b64").write_text("not a key\n")
    with pytest.raises(KeyPinError):
        await CollectorKeyPin(tmp_path / "collector_key.b64").get(fetch)
    configured = CollectorKeyPin(tmp_path / "elsewhere.b64", configured=key)
    assert await configured.get(fetch) == key
    assert not (tmp_path / "elsewhere.b64").exists()


class StepClock:
    """Monotonic time that moves only by what is slept."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.mono += seconds
        self.slept += seconds


async def test_the_bandwidth_limit_paces_bytes_to_the_configured_rate() -> None:
    clock = StepClock()
    limiter = RateLimiter(64 * 1024, clock)  # type: ignore[arg-type]
    for _ in range(64):
        await limiter.take(8 * 1024)  # 512 KiB
    # 8 s at 64 KiB/s, less the initial burst allowance (1/8 s)
    assert clock.slept == pytest.approx(8.0 - 0.125, abs=0.01)


async def test_a_collector_copy_that_does_not_match_is_uploaded_again_from_the_intact_spool(
    collector: RunningCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes damaged where no chunk checksum saw it (here: sent by an earlier client without
    one): the collector refuses the whole file (422), the agent finds its own copy intact and
    uploads it again as a new upload."""
    caplog.set_level(logging.INFO, logger="edge_agent.upload")
    await enroll(collector, DEVICE)
    root = tmp_path / "agent"
    spool = Spool(root)
    data = segment_data(200_000, 1)
    segment = spool.add("cam-1", data)
    assert segment.manifest is not None
    damaged = bytearray(data[:100_000])
    damaged[5_000] ^= 0x01
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, segment.manifest)).headers["Location"]
        assert (await patch(http, f"{collector.url}{location}", 0, bytes(damaged))).status == 204
    spool.catalog.set_upload_url("cam-1", 1, location)
    events: list[EventBodyType] = []
    async with running(spool.uploader(collector.url, events)) as up:
        await eventually(lambda: receipted(root, 1), what="a receipt")
    assert events == []  # the spool was never in doubt
    assert up.counters.failures == 1
    assert any(m.startswith("upload.restarting stream=cam-1 seq=1") for m in caplog.messages)
    rejected = collector.query("SELECT reason FROM evidence_uploads WHERE state = 'rejected'")
    assert [reason.split(":")[0] for (reason,) in rejected] == ["sha256_mismatch"]
    async with aiohttp.ClientSession() as http:
        url = f"{collector.url}/api/v1/segments/{DEVICE}/cam-1/1/content"
        async with http.get(url) as response:
            assert await response.read() == data
