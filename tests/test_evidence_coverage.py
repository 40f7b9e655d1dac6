"""Coverage: occupied time against recorded and uploaded time, on a constructed timeline, and the
interval arithmetic under it."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from collector.evidence.intervals import (
    clip,
    from_transitions,
    intersect,
    normalise,
    subtract,
    total,
)
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


def test_interval_arithmetic() -> None:
    assert normalise([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]
    assert subtract([(0, 10), (20, 30)], [(2, 3), (5, 22), (29, 40)]) == [(0, 2), (3, 5), (22, 29)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert clip([(-5, 5), (8, 20)], 0, 10) == [(0, 5), (8, 10)]
    assert total([(0, 1.5), (3, 4)]) == 2.5
    on_off = [(2.0, True), (3.0, True), (5.0, False), (7.0, True)]
    assert from_transitions(on_off, False, 0, 10) == [(2, 5), (7, 10)]
    assert from_transitions([(4.0, False)], True, 0, 10) == [(0, 4)]
    assert from_transitions([(-3.0, True)], False, 0, 10) == [(0, 10)]


def occupancy(occupied: bool) -> dict[str, object]:
    return {"type": "occupancy.changed", "occupied": occupied, "reason": "test"}


async def test_coverage_of_a_constructed_timeline(collector: RunningCollector) -> None:
    """Window 08:00–08:05. Occupied 08:00–08:01 (since before the window) and 08:02–08:03.
    cam1 records 08:00–08:01 and 08:02–08:03 except 08:02:20–08:02:30 (seq 15 never recorded);
    of those, uploaded: 08:00–08:00:20, 08:00:30–08:01, 08:02–08:02:20. mic1 records and uploads
    08:00–08:00:30. So, in seconds from 08:00: occupied [0,60) [120,180) = 120; uploaded (any
    stream) [0,60) [120,140); uncovered [140,180) = 40; unrecorded [140,150) = 10; recorded but
    not uploaded [150,180) = 30."""
    await enroll(collector, "ir-101", site="hq", room="interrogation-1")
    await enroll(collector, "ir-202", site="hq", room="interrogation-2")
    key = DeviceKey()
    cam = Stream("ir-101", key, stream="cam1")
    mic = Stream("ir-101", key, stream="mic1", kind=StreamKind.AUDIO)
    cam_data = {seq: segment_bytes(1000, seq) for seq in range(1, 19)}
    cam_manifests = {seq: cam.next(cam_data[seq]) for seq in range(1, 19)}
    mic_data = {seq: segment_bytes(500, 100 + seq) for seq in range(1, 4)}
    mic_manifests = {seq: mic.next(mic_data[seq]) for seq in range(1, 4)}
    recorded = [*range(1, 7), 13, 14, 16, 17, 18]
    await insert_events(
        collector,
        "ir-101",
        [
            (T0 - timedelta(seconds=10), occupancy(True)),
            (T0 + timedelta(minutes=1), occupancy(False)),
            (T0 + timedelta(minutes=2), occupancy(True)),
            (T0 + timedelta(minutes=3), occupancy(False)),
            *((T0, segment_event(cam_manifests[seq])) for seq in recorded),
        ],
    )
    await insert_events(collector, "ir-202", [(T0, occupancy(True))])
    await evidence_service(collector).sync_now()
    async with aiohttp.ClientSession() as http:
        for seq in (1, 2, 4, 5, 6, 13, 14):
            assert (
                await upload(http, collector.url, cam_manifests[seq], cam_data[seq])
            ).status == 204
        for seq in (1, 2, 3):
            assert (
                await upload(http, collector.url, mic_manifests[seq], mic_data[seq])
            ).status == 204

    coverage = await collector.api(
        "/api/v1/rooms/interrogation-1/coverage?site=hq"
        "&since=2026-01-05T08:00:00Z&until=2026-01-05T08:05:00Z"
    )
    assert coverage["devices"] == ["ir-101"]
    assert coverage["occupied_seconds"] == 120
    assert coverage["occupied"]["intervals"] == [
        ["2026-01-05T08:00:00+00:00", "2026-01-05T08:01:00+00:00"],
        ["2026-01-05T08:02:00+00:00", "2026-01-05T08:03:00+00:00"],
    ]
    assert coverage["uploaded"]["seconds"] == 80
    assert coverage["recorded"]["seconds"] == 110
    assert coverage["uncovered_seconds"] == 40
    assert coverage["uncovered"]["intervals"] == [
        ["2026-01-05T08:02:20+00:00", "2026-01-05T08:03:00+00:00"]
    ]
    assert coverage["unrecorded_seconds"] == 10
    assert coverage["not_uploaded_seconds"] == 30
    assert coverage["coverage_ratio"] == pytest.approx(2 / 3)
    streams = {s["stream"]: s for s in coverage["streams"]}
    assert (streams["cam1"]["recorded_seconds"], streams["cam1"]["uploaded_seconds"]) == (110, 70)
    assert streams["cam1"]["uncovered_seconds"] == 50
    assert (streams["mic1"]["uploaded_seconds"], streams["mic1"]["uncovered_seconds"]) == (30, 90)

    # Without site: the room name is unique here; an unknown room is a 404.
    same = await collector.api(
        "/api/v1/rooms/interrogation-1/coverage?since=2026-01-05T08:00:00Z&until=2026-01-05T08:05:00Z"
    )
    assert same["uncovered_seconds"] == 40
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{collector.url}/api/v1/rooms/nowhere/coverage") as response:
            assert response.status == 404
        async with http.get(
            f"{collector.url}/api/v1/rooms/interrogation-1/coverage?since=2026-01-05T08:00:00"
        ) as response:
            assert response.status == 400, "a time without its offset is ambiguous"
