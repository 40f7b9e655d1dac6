"""Only verified segments become evidence: size, sha256, the device's pinned key and signature,
enrollment, the hash chain; the same segment twice gets the same receipt, a different one for the
same seq is refused and raises a tamper alarm; receipts verify with the collector's key."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from collector.evidence.receipts import RECEIPT_HEADER, read_header, receipt_is_valid
from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, metric_value, running_collector
from tests.test_evidence_support import (
    T0,
    TUS,
    DeviceKey,
    Stream,
    agent_started,
    create_upload,
    enroll,
    insert_events,
    patch,
    segment_bytes,
    segment_event,
    upload,
)


@dataclass
class Alarms:
    """A tamper hook that remembers what it was told."""

    calls: list[tuple[str, str | None, int | None, str, str]] = field(default_factory=list)

    def __call__(
        self, device_id: str, stream: str | None, seq: int | None, kind: str, detail: str
    ) -> None:
        self.calls.append((device_id, stream, seq, kind, detail))


@pytest.fixture
def alarms(collector: RunningCollector) -> Alarms:
    from collector.evidence import EVIDENCE

    hook = Alarms()
    collector.app[EVIDENCE].value.hooks.add(hook)
    return hook


def stored_files(running: RunningCollector) -> list[Path]:
    return [p for p in (running.settings.data_dir / "evidence").rglob("*") if p.is_file()]


def part_files(running: RunningCollector) -> list[Path]:
    return list((running.settings.data_dir / "uploads").iterdir())


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


async def test_a_flipped_byte_fails_final_verification_and_nothing_is_kept(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(1_000_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    flipped = bytearray(data)
    flipped[500_000] ^= 0x01
    async with aiohttp.ClientSession() as http:
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
        url = f"{collector.url}{location}"
        assert (await patch(http, url, 0, bytes(flipped[:400_000]))).status == 204
        async with http.patch(
            url,
            data=bytes(flipped[400_000:]),
            headers={
                **TUS,
                "Upload-Offset": "400000",
                "Content-Type": "application/offset+octet-stream",
            },
        ) as response:
            assert await error_of(response) == (422, "sha256_mismatch")
            assert RECEIPT_HEADER not in response.headers
        async with http.head(url, headers=TUS) as response:
            assert response.status == 410
        async with http.get(f"{collector.url}/api/v1/segments/ir-101/cam1/1/content") as response:
            assert response.status == 404
    assert stored_files(collector) == []
    assert part_files(collector) == []
    assert collector.query("SELECT COUNT(*) FROM evidence_segments") == [(0,)]
    assert collector.query("SELECT state FROM evidence_uploads") == [("rejected",)]
    metrics = await collector.metrics()
    assert metric_value(metrics, "custos_evidence_rejected_total", 'reason="sha256_mismatch"') == 1


async def test_bad_signature_unknown_key_and_unenrolled_device_are_refused(
    collector: RunningCollector, alarms: Alarms
) -> None:
    await enroll(collector, "ir-101")
    announced, other = DeviceKey(), DeviceKey()
    await insert_events(collector, "ir-101", [(T0, agent_started(announced.public_b64))])
    data = segment_bytes(10_000)

    good = Stream("ir-101", announced).next(data)
    forged = good.model_copy(update={"signature": Stream("ir-101", other).next(data).signature})
    unknown_key = Stream("ir-101", other).next(data)
    stranger = Stream("ir-999", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        assert await error_of(await create_upload(http, collector.url, forged)) == (
            403,
            "bad_signature",
        )
        assert await error_of(await create_upload(http, collector.url, unknown_key)) == (
            403,
            "key_mismatch",
        )
        assert await error_of(await create_upload(http, collector.url, stranger)) == (
            403,
            "unknown_device",
        )
        assert (await upload(http, collector.url, good, data)).status == 204
    assert collector.query("SELECT source FROM evidence_keys") == [("agent.started",)]
    assert [(c[0], c[3]) for c in alarms.calls] == [("ir-101", "key_changed")]
    metrics = await collector.metrics()
    for reason in ("bad_signature", "key_mismatch", "unknown_device"):
        assert metric_value(metrics, "custos_evidence_rejected_total", f'reason="{reason}"') == 1


async def test_a_key_change_after_trust_on_first_use_is_refused_and_alarmed(
    collector: RunningCollector, alarms: Alarms
) -> None:
    await enroll(collector, "ir-101")
    first_key, second_key = DeviceKey(), DeviceKey()
    stream = Stream("ir-101", first_key)
    data1, data2 = segment_bytes(5000, 1), segment_bytes(5000, 2)
    async with aiohttp.ClientSession() as http:
        assert (await upload(http, collector.url, stream.next(data1), data1)).status == 204
        stream.key = second_key
        response = await upload(http, collector.url, stream.next(data2), data2)
        assert await error_of(response) == (403, "key_mismatch")
        async with http.get(f"{collector.url}/api/v1/keys/devices/ir-101") as response:
            pinned = await response.json()
    assert pinned["public_key"] == first_key.public_b64
    assert pinned["source"] == "first_upload"
    assert alarms.calls[0][:4] == ("ir-101", "cam1", 2, "key_changed")


async def test_a_wrong_chain_link_is_refused_when_the_previous_manifest_is_known(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    stream = Stream("ir-101", DeviceKey())
    data1, data2 = segment_bytes(5000, 1), segment_bytes(5000, 2)
    async with aiohttp.ClientSession() as http:
        assert (await upload(http, collector.url, stream.next(data1), data1)).status == 204
        stream.prev = "ab" * 32
        response = await upload(http, collector.url, stream.next(data2), data2)
        assert await error_of(response) == (422, "chain_mismatch")
    assert collector.query("SELECT seq, chain FROM evidence_segments") == [(1, "start")]


async def test_a_link_not_yet_checkable_is_settled_when_the_previous_manifest_arrives(
    collector: RunningCollector, alarms: Alarms
) -> None:
    from tests.test_evidence_support import evidence_service

    await enroll(collector, "ir-101")
    key = DeviceKey()
    good, bad = Stream("ir-101", key, stream="cam1"), Stream("ir-101", key, stream="cam2")
    data = [segment_bytes(4000, i) for i in range(4)]
    good1, good2 = good.next(data[0]), good.next(data[1])
    bad1 = bad.next(data[2])
    bad.prev = "cd" * 32
    bad2 = bad.next(data[3])
    async with aiohttp.ClientSession() as http:
        assert (await upload(http, collector.url, good2, data[1])).status == 204
        assert (await upload(http, collector.url, bad2, data[3])).status == 204
    chains = "SELECT stream, chain FROM evidence_segments ORDER BY stream"
    assert collector.query(chains) == [("cam1", "unverified"), ("cam2", "unverified")]

    await insert_events(
        collector, "ir-101", [(T0, segment_event(good1)), (T0, segment_event(bad1))]
    )
    await evidence_service(collector).sync_now()
    assert collector.query(chains) == [("cam1", "verified"), ("cam2", "broken")]
    assert [(c[1], c[2], c[3]) for c in alarms.calls] == [("cam2", 2, "chain_broken")]


async def test_the_same_segment_twice_gets_the_same_receipt(collector: RunningCollector) -> None:
    await enroll(collector, "ir-101")
    data = segment_bytes(20_000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with aiohttp.ClientSession() as http:
        first = await upload(http, collector.url, signed, data)
        created = await create_upload(http, collector.url, signed)
        assert created.status == 201
        assert created.headers[RECEIPT_HEADER] == first.headers[RECEIPT_HEADER], "short-circuit"
        again = await patch(http, f"{collector.url}{created.headers['Location']}", 0, data)
        assert again.status == 204
        async with http.get(f"{collector.url}/api/v1/segments/ir-101/cam1/1/receipt") as r:
            by_segment = r.headers[RECEIPT_HEADER]
    assert again.headers[RECEIPT_HEADER] == first.headers[RECEIPT_HEADER] == by_segment
    assert len(stored_files(collector)) == 1
    assert part_files(collector) == []
    assert metric_value(await collector.metrics(), "custos_evidence_duplicates_total") == 1


async def test_the_same_seq_with_other_content_gets_409_and_a_tamper_alarm(
    collector: RunningCollector, alarms: Alarms
) -> None:
    await enroll(collector, "ir-101")
    key = DeviceKey()
    original, altered = segment_bytes(8000, 1), segment_bytes(8000, 2)
    async with aiohttp.ClientSession() as http:
        assert (
            await upload(http, collector.url, Stream("ir-101", key).next(original), original)
        ).status == 204
        response = await upload(http, collector.url, Stream("ir-101", key).next(altered), altered)
        assert await error_of(response) == (409, "segment_conflict")
    assert len(alarms.calls) == 1
    device_id, stream, seq, kind, detail = alarms.calls[0]
    assert (device_id, stream, seq, kind) == ("ir-101", "cam1", 1, "seq_conflict")
    assert hashlib.sha256(altered).hexdigest() in detail
    metrics = await collector.metrics()
    assert metric_value(metrics, "custos_evidence_tamper_total", 'kind="seq_conflict"') == 1
    assert collector.query("SELECT sha256 FROM evidence_segments") == [
        (hashlib.sha256(original).hexdigest(),)
    ]


async def test_an_upload_that_contradicts_the_announced_manifest_is_a_conflict(
    collector: RunningCollector, alarms: Alarms
) -> None:
    await enroll(collector, "ir-101")
    key = DeviceKey()
    announced, uploaded = segment_bytes(3000, 1), segment_bytes(3000, 2)
    await insert_events(
        collector, "ir-101", [(T0, segment_event(Stream("ir-101", key).next(announced)))]
    )
    async with aiohttp.ClientSession() as http:
        response = await upload(http, collector.url, Stream("ir-101", key).next(uploaded), uploaded)
        assert await error_of(response) == (409, "segment_conflict")
    assert [c[3] for c in alarms.calls] == ["seq_conflict"]


async def test_receipts_verify_with_the_published_collector_key_which_survives_restarts(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "collector"
    data = segment_bytes(7000)
    signed = Stream("ir-101", DeviceKey()).next(data)
    async with running_collector(broker.url, data_dir) as first, aiohttp.ClientSession() as http:
        await enroll(first, "ir-101")
        response = await upload(http, first.url, signed, data)
        receipt = read_header(response.headers[RECEIPT_HEADER])
        async with http.get(f"{first.url}/api/v1/keys/collector") as r:
            published = await r.json()
    key_file = data_dir / "keys" / "collector-ed25519.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (data_dir / "keys").stat().st_mode & 0o777 == 0o700
    assert receipt_is_valid(receipt, published["public_key"])
    assert (
        published["fingerprint"]
        == hashlib.sha256(base64.b64decode(published["public_key"])).hexdigest()
    )
    parsed = receipt.parsed()
    assert (parsed.sha256, parsed.manifest_sha256) == (
        hashlib.sha256(data).hexdigest(),
        signed.manifest_sha256,
    )
    tampered = receipt.model_copy(update={"receipt": receipt.receipt.replace('"seq":1', '"seq":2')})
    assert not receipt_is_valid(tampered, published["public_key"])
    assert not [p for p in (data_dir / "keys").iterdir() if p.name.endswith(".tmp")]

    async with running_collector(broker.url, data_dir) as second:
        assert (await second.api("/api/v1/keys/collector"))["public_key"] == published["public_key"]
