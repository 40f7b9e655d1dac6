"""The recorder on real files: synthetic cameras (libx264) and microphones (AAC) through the real
adapters, segments written to a spool, decoded back with PyAV, manifests verified with the public
key, and a recording process killed with SIGKILL mid-segment.

The recorder's own logic runs on a ``ManualClock`` (the synthetic sources are timed by it too), so
25 s of recording take a couple of seconds; encoding and file work run in their threads in real
time, and the driver waits for them to catch up after every step of the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from edge_agent.recording.catalog import SegmentState
from edge_agent.recording.errors import SpoolStateError
from edge_agent.recording.factory import KEY_FILE, SPOOL_DIR, build_recorder, build_sources
from edge_agent.recording.keys import verify_manifest
from edge_agent.recording.mpegts import TS_PACKET
from edge_agent.recording.recorder import SegmentRecorder
from firmware_config.schema import AgentConfig
from protocol.clock import ManualClock, SystemClock
from protocol.events import EventBodyType, RecordingStarted, RecordingStopped, SegmentRecorded
from protocol.recording import SegmentManifest, SignedManifest, StreamKind

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "ir-101"
FPS = 10
RATE = 16_000
CLOCK_START = 1000.0


def room_config(
    segment_s: float = 10.0, pre_roll_s: float = 5.0, cameras: int = 2, microphones: int = 2
) -> AgentConfig:
    """An interrogation room: two cameras and two microphones, each its own stream."""
    return AgentConfig.model_validate(
        {
            "device": {"id": DEVICE, "site": "hq", "room": "ir-1", "room_kind": "interrogation"},
            "recording": {"segment_s": segment_s, "pre_roll_s": pre_roll_s},
            "cameras": [
                {"id": f"cam-{i}", "source": "synthetic", "width": 320, "height": 240, "fps": FPS}
                for i in range(1, cameras + 1)
            ],
            "microphones": [
                {"id": f"mic-{i}", "source": "synthetic", "sample_rate": RATE}
                for i in range(1, microphones + 1)
            ],
        }
    )


def make_recorder(
    config: AgentConfig, data_dir: Path, clock: Any, emit: Callable[[EventBodyType], object]
) -> SegmentRecorder:
    return build_recorder(
        config,
        data_dir,
        clock=clock,
        device_id=DEVICE,
        boot_id=uuid.uuid4(),
        emit=emit,
        sources=build_sources(config, clock),
    )


class Driver:
    """Moves a ManualClock in small steps and waits (in real time) for the capture threads."""

    LAG_S = 0.5  # audio: one 0.1 s block, the AAC encoder's delay and frame size

    def __init__(self, clock: ManualClock, recorder: SegmentRecorder) -> None:
        self.clock = clock
        self.recorder = recorder
        self.since = clock.monotonic()

    async def run(self, seconds: float, step: float = 0.1) -> None:
        target = self.clock.monotonic() + seconds
        while self.clock.monotonic() < target - 1e-9:
            await self.clock.advance(min(step, target - self.clock.monotonic()))
            await self.settle()

    async def settle(self) -> None:
        now = self.clock.monotonic()
        expected = now - self.LAG_S if now - self.since > 2 * self.LAG_S else float("-inf")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health = self.recorder.source_health().values()
            if all(
                expected == float("-inf")
                or (h.last_packet_mono is not None and h.last_packet_mono >= expected)
                for h in health
            ):
                return
            await asyncio.sleep(0.002)
        raise AssertionError(f"the sources fell behind: {self.recorder.source_health()}")

    async def stop(self, reason: str) -> None:
        stopping = asyncio.create_task(self.recorder.stop(reason))
        while not stopping.done():
            await self.clock.advance(0.05)
            await asyncio.sleep(0.005)
        await stopping


async def record_once(
    recorder: SegmentRecorder, clock: ManualClock, before_s: float, reason: str, during_s: float
) -> None:
    """With an opened recorder: ``before_s`` of pre-roll, a start for ``reason``, ``during_s`` of
    recording, a stop as an empty room would ask, then close it."""
    driver = Driver(clock, recorder)
    try:
        await driver.run(before_s)
        await recorder.start(reason)
        await driver.run(during_s)
        await driver.stop("room empty")
    finally:
        await recorder.close()


def manifests_of(events: list[EventBodyType]) -> list[SignedManifest]:
    return [e.manifest for e in events if isinstance(e, SegmentRecorded)]


def by_stream(signed: list[SignedManifest]) -> dict[str, list[SegmentManifest]]:
    result: dict[str, list[SegmentManifest]] = {}
    for item in signed:
        manifest = item.parsed()
        result.setdefault(manifest.stream, []).append(manifest)
    return result


def segment_path(data_dir: Path, manifest: SegmentManifest) -> Path:
    return data_dir / SPOOL_DIR / manifest.stream / f"{manifest.seq:010d}.ts"


def decode(path: Path) -> list[Any]:
    with av.open(str(path)) as container:
        return [frame for packet in container.demux() for frame in packet.decode()]


def frame_counter(frame: Any) -> int:
    """The index the synthetic camera drew as 16 squares along the top of the picture."""
    luma = frame.reformat(format="gray").to_ndarray()
    cell = max(2, frame.width // 32)
    return sum(1 << bit for bit in range(16) if luma[cell // 2, bit * cell + cell // 2] > 128)


def assert_chained_and_signed(signed: list[SignedManifest], public_key: str) -> None:
    heads: dict[str, str] = {}
    for item in signed:
        manifest = item.parsed()
        assert verify_manifest(item, public_key), f"{manifest.stream}/{manifest.seq}"
        assert manifest.prev_manifest_sha256 == heads.get(manifest.stream)
        heads[manifest.stream] = item.manifest_sha256


async def test_a_25_s_recording_makes_three_decodable_signed_chained_segments_per_stream(
    tmp_path: Path,
) -> None:
    clock = ManualClock(monotonic_start=CLOCK_START)
    events: list[EventBodyType] = []
    recorder = make_recorder(room_config(), tmp_path, clock, events.append)
    await recorder.open()
    driver = Driver(clock, recorder)
    try:
        await driver.run(6.0)
        t0 = clock.monotonic()
        await recorder.start("door.opened")
        await driver.run(17.0)
        alarm_at = clock.monotonic()
        recorder.mark_alarm()
        await driver.run(8.0)
        await driver.stop("room empty")
    finally:
        await recorder.close()

    assert isinstance(events[0], RecordingStarted)
    assert isinstance(events[-1], RecordingStopped)
    assert events[-1].recording_id == events[0].recording_id
    assert events[0].streams == ("cam-1", "cam-2", "mic-1", "mic-2")
    assert events[0].pre_roll_s >= 5.0 - 1 / FPS
    signed = manifests_of(events)
    streams = by_stream(signed)
    assert sorted(streams) == ["cam-1", "cam-2", "mic-1", "mic-2"]
    assert_chained_and_signed(signed, recorder.public_key_b64)

    for name, manifests in streams.items():
        assert [m.seq for m in manifests] == [1, 2, 3], name
        assert {m.recording_id for m in manifests} == {events[0].recording_id}
        assert all(m.device_id == DEVICE and not m.partial for m in manifests)
        # The pre-roll: the first segment starts at least pre_roll_s (less a frame) before the
        # start call and says how much; the others say none.
        first = manifests[0]
        assert t0 - first.start_mono >= 5.0 - 1 / FPS, name
        assert first.pre_roll_s == pytest.approx(t0 - first.start_mono, abs=1e-3)
        assert [m.pre_roll_s for m in manifests[1:]] == [0.0, 0.0]
        # Alarm: the segment it happened in, and the next (starting 3 s later, within 5 s).
        assert [m.alarm for m in manifests] == [False, True, True], name
        assert manifests[1].start_mono <= alarm_at <= manifests[1].end_mono
        for manifest in manifests:
            path = segment_path(tmp_path, manifest)
            data = path.read_bytes()
            assert len(data) == manifest.size and len(data) % TS_PACKET == 0
            assert hashlib.sha256(data).hexdigest() == manifest.sha256
            frames = decode(path)
            duration = manifest.end_mono - manifest.start_mono
            if manifest.kind is StreamKind.VIDEO:
                assert abs(len(frames) - duration * FPS) <= 2, (name, manifest.seq, len(frames))
            else:
                samples = sum(frame.samples for frame in frames)
                assert abs(samples - duration * RATE) <= 3 * 1024, (name, manifest.seq, samples)

    # The picture at the start of the first segment was captured before the trigger: the frame
    # counter drawn into it says when.
    first_frame = decode(segment_path(tmp_path, streams["cam-1"][0]))[0]
    captured_at = CLOCK_START + frame_counter(first_frame) / FPS
    assert t0 - captured_at >= 5.0 - 1 / FPS

    # Every stream cuts within one frame of the others (two cameras, two microphones).
    for index in (1, 2):
        starts = [manifests[index].start_mono for manifests in streams.values()]
        assert max(starts) - min(starts) <= 1 / FPS, starts
        ends = [manifests[index - 1].end_mono for manifests in streams.values()]
        assert max(ends) - min(ends) <= 1 / FPS, ends

    catalog_states = {s.state for s in _catalog_segments(tmp_path)}
    assert catalog_states == {SegmentState.ANNOUNCED}


def _catalog_segments(data_dir: Path) -> list[Any]:
    from edge_agent.recording.catalog import SpoolCatalog

    catalog = SpoolCatalog.open(data_dir / SPOOL_DIR, SystemClock())
    try:
        return catalog.segments()
    finally:
        catalog.close()


async def _short_recording(data_dir: Path, config: AgentConfig) -> tuple[list[Any], str]:
    clock = ManualClock(monotonic_start=CLOCK_START)
    events: list[EventBodyType] = []
    recorder = make_recorder(config, data_dir, clock, events.append)
    await recorder.open()
    await record_once(recorder, clock, 1.5, "presence.detected", 2.5)
    return events, recorder.public_key_b64


async def test_seqs_and_the_chain_continue_after_a_restart_with_the_same_key(
    tmp_path: Path,
) -> None:
    config = room_config(segment_s=10, pre_roll_s=1, cameras=1, microphones=1)
    first_events, first_key = await _short_recording(tmp_path, config)
    second_events, second_key = await _short_recording(tmp_path, config)

    assert first_key == second_key
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signed = manifests_of(first_events) + manifests_of(second_events)
    assert_chained_and_signed(signed, first_key)
    streams = by_stream(signed)
    assert [m.seq for m in streams["cam-1"]] == [1, 2]
    assert [m.seq for m in streams["mic-1"]] == [1, 2]
    assert streams["cam-1"][0].boot_id != streams["cam-1"][1].boot_id


async def test_an_unannounced_segment_is_announced_at_the_next_start_and_follows_the_states(
    tmp_path: Path,
) -> None:
    config = room_config(segment_s=10, pre_roll_s=1, cameras=1, microphones=0)
    failed: list[SignedManifest] = []

    def broken_outbox(body: EventBodyType) -> None:
        if isinstance(body, SegmentRecorded):
            failed.append(body.manifest)
            raise OSError("disk I/O error")

    clock = ManualClock(monotonic_start=CLOCK_START)
    recorder = make_recorder(config, tmp_path, clock, broken_outbox)
    await recorder.open()
    await record_once(recorder, clock, 1.5, "door.opened", 1.5)
    assert len(failed) == 1
    assert [s.state for s in _catalog_segments(tmp_path)] == [SegmentState.RECORDED]

    events: list[EventBodyType] = []
    recorder = make_recorder(config, tmp_path, ManualClock(), events.append)
    await recorder.open()
    try:
        assert manifests_of(events) == failed  # the same manifest, announced again
        catalog = recorder.catalog
        [segment] = catalog.pending_uploads()
        assert segment.state is SegmentState.ANNOUNCED and segment.manifest == failed[0]
        with pytest.raises(SpoolStateError):
            catalog.mark_deleted("cam-1", 1, "disk pressure")  # never without a receipt
        catalog.set_upload_url("cam-1", 1, "http://collector/files/abc")
        catalog.mark_uploaded("cam-1", 1)
        catalog.mark_receipted("cam-1", 1, '{"receipt": "signed"}')
        assert [s.seq for s in catalog.deletable()] == [1]
        catalog.mark_deleted("cam-1", 1, "past retention")
        assert catalog.get("cam-1", 1).state is SegmentState.DELETED  # type: ignore[union-attr]
    finally:
        await recorder.close()


# --- crash: SIGKILL a recording process mid-segment --------------------------------------------


def recording_child(data_dir: str) -> None:
    """Runs in the killed subprocess: record for ever, print each announced manifest."""

    async def run() -> None:
        clock = SystemClock()
        config = room_config(segment_s=2, pre_roll_s=0.5, cameras=1, microphones=1)

        def emit(body: EventBodyType) -> None:
            if isinstance(body, SegmentRecorded):
                print(body.manifest.model_dump_json(), flush=True)

        recorder = make_recorder(config, Path(data_dir), clock, emit)
        await recorder.open()
        await asyncio.sleep(1.0)
        await recorder.start("door.opened")
        await asyncio.sleep(3600)

    asyncio.run(run())


def _run_until_killed(data_dir: Path) -> list[SignedManifest]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from tests.test_recorder import recording_child as c; c({str(data_dir)!r})",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    announced: list[SignedManifest] = []
    try:
        assert child.stdout is not None
        while {m.parsed().stream for m in announced} != {"cam-1", "mic-1"}:
            line = child.stdout.readline()
            assert line, "the recording process ended early"
            announced.append(SignedManifest.model_validate_json(line))
        time.sleep(0.8)  # well into the second 2 s segment
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return announced


async def test_a_segment_cut_short_by_sigkill_is_sealed_flagged_and_announced_at_restart(
    tmp_path: Path,
) -> None:
    before = await asyncio.to_thread(_run_until_killed, tmp_path)
    parts = sorted(p.name for p in (tmp_path / SPOOL_DIR).glob("*/*.part"))
    assert parts == ["0000000002.ts.part", "0000000002.ts.part"]

    clock = ManualClock(monotonic_start=CLOCK_START)
    events: list[EventBodyType] = []
    config = room_config(segment_s=2, pre_roll_s=0.5, cameras=1, microphones=1)
    recorder = make_recorder(config, tmp_path, clock, events.append)
    await recorder.open()
    recovered = manifests_of(events)
    await record_once(recorder, clock, 1.0, "door.opened", 1.0)

    assert list((tmp_path / SPOOL_DIR).glob("*/*.part")) == []
    first_seen = [m for m in before if m.parsed().seq == 1]
    assert sorted(m.parsed().stream for m in first_seen) == ["cam-1", "mic-1"]
    partial = by_stream(recovered)
    for name in ("cam-1", "mic-1"):
        [manifest] = partial[name]
        assert manifest.seq == 2 and manifest.partial
        path = segment_path(tmp_path, manifest)
        data = path.read_bytes()
        assert len(data) == manifest.size > 0 and len(data) % TS_PACKET == 0
        assert hashlib.sha256(data).hexdigest() == manifest.sha256
        assert len(decode(path)) >= 3, name  # what was written before the kill plays
        assert 0.2 < manifest.end_mono - manifest.start_mono < 2.0

    # One unbroken chain per stream across the crash: seq 1 (before), 2 (sealed), 3 (after).
    all_signed = first_seen + manifests_of(events)
    assert_chained_and_signed(
        sorted(all_signed, key=lambda m: m.parsed().seq), recorder.public_key_b64
    )
    assert {name: [m.seq for m in ms] for name, ms in by_stream(all_signed).items()} == {
        "cam-1": [1, 2, 3],
        "mic-1": [1, 2, 3],
    }
