"""Retention: at least 365 days, never fewer; the purge removes only expired segments that no
legal hold covers; holds are set and lifted through the API with who and why."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from collector.cli import main as collector_main
from collector.settings import CollectorSettings
from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, running_collector
from tests.test_evidence_support import (
    TUS,
    DeviceKey,
    ShiftableClock,
    Stream,
    create_upload,
    enroll,
    evidence_service,
    patch,
    segment_bytes,
    upload,
)


def test_a_retention_below_365_days_is_refused_at_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="retention_days"):
        CollectorSettings(retention_days=364)
    assert CollectorSettings(retention_days=400).retention_days == 400
    with pytest.raises(SystemExit) as refused:
        collector_main(["serve", "--retention-days", "30"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert "--retention-days: must be at least 365" in error
    config = tmp_path / "collector.toml"
    config.write_text("retention_days = 100\n")
    assert collector_main(["serve", "--config", str(config)]) == 2
    assert "retention_days: Input should be greater than or equal to 365" in capsys.readouterr().err


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


async def delete(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.delete(url, json=body) as response:
        return response.status, await response.json()


def content_path(running: RunningCollector, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return running.settings.data_dir / "evidence" / "sha256" / digest[:2] / digest[2:4] / digest


async def test_the_purge_removes_only_expired_segments_without_a_legal_hold(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    clock = ShiftableClock()
    async with (
        running_collector(
            broker.url, tmp_path / "collector", clock=clock, retention_days=400
        ) as collector,
        aiohttp.ClientSession() as http,
    ):
        service = evidence_service(collector)
        await enroll(collector, "ir-101", site="hq", room="interrogation-1")
        await enroll(collector, "ir-102", site="hq", room="interrogation-2")
        key = DeviceKey()
        cam1, cam2 = Stream("ir-101", key, stream="cam1"), Stream("ir-101", key, stream="cam2")
        other = Stream("ir-102", DeviceKey(), stream="cam1")
        data = {name: segment_bytes(2000, i) for i, name in enumerate("abcdefg")}

        # Stored 500 days ago: a (no hold), b (segment hold), c (interval hold on ir-101 cam2),
        # d (room hold on interrogation-2), e (segment hold, lifted before the purge).
        clock.offset = -timedelta(days=500)
        old = {
            "a": (cam1, cam1.next(data["a"])),
            "b": (cam1, cam1.next(data["b"])),
            "c": (cam2, cam2.next(data["c"])),
            "d": (other, other.next(data["d"])),
            "e": (cam1, cam1.next(data["e"])),
        }
        for name, (_, signed) in old.items():
            assert (await upload(http, collector.url, signed, data[name])).status == 204
        # Stored 100 days ago: f, not yet expired.
        clock.offset = -timedelta(days=100)
        fresh = cam1.next(data["f"])
        assert (await upload(http, collector.url, fresh, data["f"])).status == 204
        clock.offset = timedelta()

        holds = f"{collector.url}/api/v1/holds"
        status, hold_b = await post(http, holds, {
            "scope": "segment", "device_id": "ir-101", "stream": "cam1", "seq": 2,
            "reason": "case 2025-117", "requested_by": "法制 Li",
        })  # fmt: skip
        assert status == 201, hold_b
        assert (hold_b["created_by"], hold_b["active"]) == ("法制 Li", True)
        c_manifest = old["c"][1].parsed()
        status, hold_c = await post(http, holds, {
            "scope": "interval", "device_id": "ir-101", "stream": "cam2",
            "start": (c_manifest.start_at + timedelta(seconds=5)).isoformat(),
            "end": (c_manifest.end_at + timedelta(hours=1)).isoformat(),
            "reason": "complaint", "requested_by": "督察 Wang",
        })  # fmt: skip
        assert status == 201, hold_c
        d_manifest = old["d"][1].parsed()
        status, hold_d = await post(http, holds, {
            "scope": "interval", "site": "hq", "room": "interrogation-2",
            "start": d_manifest.start_at.isoformat(), "end": d_manifest.end_at.isoformat(),
            "reason": "inquiry", "requested_by": "督察 Wang",
        })  # fmt: skip
        assert status == 201, hold_d
        status, hold_e = await post(http, holds, {
            "scope": "segment", "device_id": "ir-101", "stream": "cam1", "seq": 4,
            "reason": "mistake", "requested_by": "法制 Li",
        })  # fmt: skip
        assert status == 201
        status, lifted = await delete(
            http, f"{holds}/{hold_e['hold_id']}", {"lifted_by": "法制 Li", "reason": "wrong seq"}
        )
        assert status == 200
        assert (lifted["active"], lifted["lifted_by"], lifted["lift_reason"]) == (
            False, "法制 Li", "wrong seq",
        )  # fmt: skip
        status, _ = await delete(
            http, f"{holds}/{hold_e['hold_id']}", {"lifted_by": "x", "reason": "again"}
        )
        assert status == 409

        detail = await collector.api("/api/v1/segments/ir-101/cam1/2")
        assert [h["hold_id"] for h in detail["holds"]] == [hold_b["hold_id"]]

        report = await service.housekeeping()
        assert (report.purged, report.files_removed, report.held) == (2, 2, 3)
        purged = collector.query(
            "SELECT device_id, stream, seq FROM evidence_segments WHERE purged_at IS NOT NULL "
            "ORDER BY device_id, stream, seq"
        )
        assert purged == [("ir-101", "cam1", 1), ("ir-101", "cam1", 3)]  # a and e
        for name in ("a", "e"):
            assert not content_path(collector, data[name]).exists()
        for name in ("b", "c", "d", "f"):
            assert content_path(collector, data[name]).exists(), name
        async with http.get(f"{collector.url}/api/v1/segments/ir-101/cam1/1/content") as response:
            assert response.status == 410
        listing = await collector.api("/api/v1/segments?device=ir-101&stream=cam1")
        assert [s["upload_state"] for s in listing["segments"]] == [
            "purged", "uploaded", "purged", "uploaded",
        ]  # fmt: skip
        receipt = await collector.api("/api/v1/segments/ir-101/cam1/1")
        assert receipt["receipt"] is not None, "the proof outlives the bytes"

        # Lifting the hold lets the next purge take b; f expires only after its own 400 days.
        status, _ = await delete(
            http, f"{holds}/{hold_b['hold_id']}", {"lifted_by": "法制 Li", "reason": "case closed"}
        )
        assert status == 200
        report = await service.housekeeping()
        assert (report.purged, report.held) == (1, 2)
        assert not content_path(collector, data["b"]).exists()
        clock.offset = timedelta(days=301)
        report = await service.housekeeping()
        assert report.purged == 1
        assert not content_path(collector, data["f"]).exists()
        active = await collector.api("/api/v1/holds?active=true")
        assert sorted(h["hold_id"] for h in active["holds"]) == sorted(
            [hold_c["hold_id"], hold_d["hold_id"]]
        )


async def test_hold_requests_are_validated(collector: RunningCollector) -> None:
    holds = f"{collector.url}/api/v1/holds"
    async with aiohttp.ClientSession() as http:
        for body in (
            {"scope": "segment", "device_id": "ir-101", "reason": "x", "requested_by": "y"},
            {"scope": "interval", "device_id": "ir-101", "start": "2026-01-05T08:00:00Z",
             "end": "2026-01-05T07:00:00Z", "reason": "x", "requested_by": "y"},
            {"scope": "interval", "site": "hq", "start": "2026-01-05T08:00:00Z",
             "end": "2026-01-05T09:00:00Z", "reason": "x", "requested_by": "y"},
            {"scope": "segment", "device_id": "ir-101", "stream": "cam1", "seq": 1,
             "reason": "x"},
        ):  # fmt: skip
            status, answer = await post(http, holds, body)
            assert status == 422, body
            assert answer["error"]["code"] == "invalid_request"
        status, _ = await delete(http, f"{holds}/999", {"lifted_by": "x", "reason": "y"})
        assert status == 404


async def test_an_abandoned_upload_expires(broker: MosquittoBroker, tmp_path: Path) -> None:
    clock = ShiftableClock()
    async with (
        running_collector(
            broker.url, tmp_path / "collector", clock=clock, upload_expiry_days=7
        ) as collector,
        aiohttp.ClientSession() as http,
    ):
        await enroll(collector, "ir-101")
        data = segment_bytes(10_000)
        signed = Stream("ir-101", DeviceKey()).next(data)
        location = (await create_upload(http, collector.url, signed)).headers["Location"]
        assert (await patch(http, f"{collector.url}{location}", 0, data[:4000])).status == 204
        service = evidence_service(collector)
        clock.offset = timedelta(days=6)
        await service.housekeeping()
        async with http.head(f"{collector.url}{location}", headers=TUS) as response:
            assert response.headers["Upload-Offset"] == "4000"
        clock.offset = timedelta(days=7, minutes=1)
        await service.housekeeping()
        async with http.head(f"{collector.url}{location}", headers=TUS) as response:
            assert response.status == 404
    assert list((tmp_path / "collector" / "uploads").iterdir()) == []
    assert service.metrics.expired_uploads == 1
