"""The recorder at the edge of the disk: no segment is opened while the space guard holds
recording back (so no seq is used and there is no gap), the segment being written is sealed as
partial, recording resumes by itself; a segment whose catalog row could not be inserted is sealed
as an empty partial segment instead of becoming a silent gap. Real files, synthetic sources, the
recorder's logic on a ManualClock (see ``tests/test_recorder.py``)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from edge_agent.recording.catalog import SegmentOpening, SpoolCatalog
from edge_agent.recording.errors import SpoolError
from edge_agent.recording.factory import build_recorder, build_sources
from edge_agent.recording.recorder import SegmentRecorder
from firmware_config.schema import AgentConfig
from protocol.clock import ManualClock
from protocol.events import EventBodyType
from tests.helpers import eventually
from tests.test_recorder import (
    CLOCK_START,
    DEVICE,
    Driver,
    assert_chained_and_signed,
    by_stream,
    manifests_of,
    record_once,
    room_config,
)

LAG_S = Driver.LAG_S + 0.5


def _recorder(
    config: AgentConfig,
    data_dir: Path,
    clock: ManualClock,
    events: list[EventBodyType],
    allowed: list[bool],
) -> SegmentRecorder:
    return build_recorder(
        config,
        data_dir,
        clock=clock,
        device_id=DEVICE,
        boot_id=uuid.uuid4(),
        emit=events.append,
        sources=build_sources(config, clock),
        may_write=lambda: allowed[0],
    )


async def test_no_segment_opens_while_the_disk_is_full_and_recording_resumes_without_a_gap(
    tmp_path: Path,
) -> None:
    clock = ManualClock(monotonic_start=CLOCK_START)
    events: list[EventBodyType] = []
    allowed = [True]
    config = room_config(segment_s=2, pre_roll_s=0, cameras=1, microphones=1)
    recorder = _recorder(config, tmp_path, clock, events, allowed)
    await recorder.open()
    driver = Driver(clock, recorder)
    try:
        await driver.run(1.0)
        await recorder.start("door.opened")
        await driver.run(3.0)  # segment 1 done, segment 2 half written
        # Capture runs ahead of the worker that cuts segments: let it reach segment 2 first,
        # or a slow machine would still be writing segment 1 when the disk fills.
        await eventually(
            lambda: asyncio.sleep(
                0, all(seq >= 2 for seq in recorder.catalog.last_seqs().values())
            ),
            timeout=10,
            what="every stream writing its second segment",
        )
        full_at = clock.monotonic()
        allowed[0] = False
        await driver.run(5.0)
        room_at = clock.monotonic()
        allowed[0] = True
        await driver.run(4.5)
        await driver.stop("room empty")
    finally:
        await recorder.close()

    signed = manifests_of(events)
    assert_chained_and_signed(signed, recorder.public_key_b64)
    for name, manifests in by_stream(signed).items():
        assert [m.seq for m in manifests] == list(range(1, len(manifests) + 1)), name
        assert len(manifests) >= 4, name
        cut = manifests[1]
        assert cut.partial and cut.end_mono <= full_at, name  # sealed from what it had
        assert not manifests[0].partial and not manifests[2].partial, name
        # Nothing began while the disk was held back; the next began once it had room.
        # Nothing began while the disk was held back; the next began once it had room. (The
        # guard is asked when a packet is routed, which is up to LAG_S after it was captured.)
        assert all(not full_at + LAG_S < m.start_mono < room_at - LAG_S for m in manifests), name
        assert room_at - LAG_S <= manifests[2].start_mono <= room_at + 1.5, name


async def test_a_segment_whose_row_could_not_be_inserted_is_sealed_empty_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(monotonic_start=CLOCK_START)
    events: list[EventBodyType] = []
    config = room_config(segment_s=2, pre_roll_s=0, cameras=1, microphones=1)
    recorder = _recorder(config, tmp_path, clock, events, [True])
    begin = recorder.catalog.begin
    failed: list[SegmentOpening] = []

    def flaky_begin(opening: SegmentOpening) -> None:
        if (opening.stream, opening.seq) == ("cam-1", 2) and not failed:
            failed.append(opening)
            raise SpoolError("database or disk is full")
        begin(opening)

    monkeypatch.setattr(SpoolCatalog, "begin", lambda self, opening: flaky_begin(opening))
    await recorder.open()
    await record_once(recorder, clock, 1.0, "door.opened", 7.0)

    assert failed
    signed = manifests_of(events)
    assert_chained_and_signed(signed, recorder.public_key_b64)
    camera = by_stream(signed)["cam-1"]
    assert [m.seq for m in camera] == list(range(1, len(camera) + 1))
    assert (camera[1].partial, camera[1].size) == (True, 0)
    assert not camera[2].partial and camera[2].size > 0
