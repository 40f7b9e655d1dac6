"""A size-limited data directory (a tmpfs) fills up while the collector cannot take uploads: the
recorder stops at ``storage.reserve_mb``, the ``disk full`` alarm is raised, nothing crashes, the
outbox still commits, no unuploaded segment is lost; when receipts arrive and receipted segments
are deleted, recording resumes by itself. Real Mosquitto, real collector, real files."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from protocol.recording import SignedManifest
from simulators.broker import MosquittoBroker, free_port
from simulators.netproxy import TcpProxy
from simulators.site import enroll_rooms
from tests.helpers import RunningCollector, eventually
from tests.upload_support import DEVICE, catalog_rows, recording_room

MIB = 1024 * 1024
RESERVE_MB = 2
ROOM_FOR_SEGMENTS = 600 * 1024
"""Free space left above the reserve once the agent runs. The SQLite write-ahead logs of the
outbox and the catalog (which grow to about 4 MiB each before they are reused) take most of it,
the recordings the rest: the disk is full within seconds."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs. Mounting needs root (CI runs as root): without it the test fails, loudly."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs for the disk-full test (needs root, as in CI): "
            f"{result.stderr.strip() or result.returncode}"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def _events(collector: RunningCollector, kind: str) -> list[dict[str, Any]]:
    return [e for e in await collector.events(DEVICE) if e["type"] == kind]


async def _disk_verdicts(collector: RunningCollector) -> list[tuple[str, str | None, bool]]:
    return [
        (e["body"]["state"], e["body"].get("reason"), e["alarm"])
        for e in await _events(collector, "component.changed")
        if e["body"]["component"] == "disk"
    ]


async def test_a_full_data_directory_stops_recording_raises_the_alarm_and_loses_nothing(
    broker: MosquittoBroker, collector: RunningCollector, small_disk: Path
) -> None:
    data_dir = small_disk / DEVICE
    port = free_port()  # the collector's HTTP side: unreachable until the proxy starts
    config: dict[str, Any] = {
        "segment_s": 2.0,
        "storage": {"reserve_mb": RESERVE_MB},
        "upload": {"retry_max_s": 1.0},
    }
    room = recording_room(broker.url, f"http://127.0.0.1:{port}", data_dir, **config)
    await enroll_rooms([room], collector.url)
    await room.start()
    target = urlsplit(collector.url)
    assert target.hostname is not None and target.port is not None
    proxy = TcpProxy(target.hostname, target.port, listen_port=port)
    try:
        room.act("door.open")
        room.act("motion.start")
        free = shutil.disk_usage(small_disk).free
        ballast = free - RESERVE_MB * MIB - ROOM_FOR_SEGMENTS
        (small_disk / "ballast").write_bytes(b"\0" * ballast)

        async def full() -> bool:
            return ("failed", "disk full", True) in await _disk_verdicts(collector)

        await eventually(full, timeout=90, what="the disk full alarm at the collector")
        paused_rows = len(catalog_rows(data_dir))
        room.act("door.close")  # the outbox still commits and delivers
        await eventually(lambda: _has_event(collector, "door.closed"), what="door.closed delivered")
        await asyncio.sleep(3.0)  # 1.5 segments: nothing new is begun while full
        assert len(catalog_rows(data_dir)) == paused_rows
        assert shutil.disk_usage(small_disk).free > RESERVE_MB * MIB // 2
        assert room.running  # nothing crashed
        await eventually(lambda: _backlog_reported(collector), what="the backlog in heartbeats")
        last_seqs = _last_seqs(data_dir)

        await proxy.start()  # the collector is reachable: receipts, then deletions

        async def deleted() -> bool:
            rows = [r for r in catalog_rows(data_dir) if r.seq <= last_seqs[r.stream]]
            return all(r.state == "deleted" for r in rows)

        await eventually(deleted, timeout=60, what="every segment so far receipted and deleted")
        # Most of what filled this small disk is the SQLite write-ahead logs (up to 4 MiB each
        # before they are reused), not recordings: clean up the rest of the disk too.
        (small_disk / "ballast").unlink()

        async def resumed() -> bool:
            rows = catalog_rows(data_dir)
            return all(
                any(r.stream == s and r.seq > q and r.state != "writing" for r in rows)
                for s, q in last_seqs.items()
            )

        await eventually(resumed, timeout=60, what="new segments on every stream")
        await eventually(
            lambda: _verdict_after_full(collector), what="the disk no longer full at the collector"
        )
    finally:
        await room.stop()
        await proxy.close()
    assert sum(r.state == "deleted" for r in catalog_rows(data_dir)) > 0

    # Drain what the stop left, then compare with the collector. (A restarted agent records
    # until it knows the room is empty: segments of that run may still be on their way.)
    before = _last_seqs(data_dir)
    drain = recording_room(broker.url, f"http://127.0.0.1:{port}", data_dir, **config)
    proxy = TcpProxy(target.hostname, target.port, listen_port=port)
    await proxy.start()
    await drain.start()
    try:

        async def drained() -> bool:
            rows = [r for r in catalog_rows(data_dir) if r.seq <= before[r.stream]]
            return all(r.state in ("receipted", "deleted") for r in rows)

        await eventually(drained, timeout=60, what="every segment of the full run receipted")
    finally:
        await drain.stop()
        await proxy.close()
    rows = catalog_rows(data_dir)
    settled = [r for r in rows if r.state in ("receipted", "deleted")]
    for row in rows:
        if row.state not in ("receipted", "deleted"):  # the drain run's last few
            assert row.state == "announced" and row.seq > before[row.stream]
            assert (data_dir / "spool" / row.stream / f"{row.seq:010d}.ts").exists()
    stored = {
        (stream, seq): sha256
        for stream, seq, sha256 in collector.query(
            "SELECT stream, seq, sha256 FROM evidence_segments WHERE device_id = ?", DEVICE
        )
    }
    assert {(r.stream, r.seq): r.sha256 for r in settled} == stored
    for stream in {r.stream for r in rows}:
        seqs = [r.seq for r in rows if r.stream == stream]
        assert seqs == list(range(1, len(seqs) + 1)), f"a gap in {stream}"
    assert all(r.receipt is not None for r in settled)
    deletions = [e["body"] for e in await _events(collector, "segment.deleted")]
    assert {(d["stream"], d["seq"]) for d in deletions} >= {
        (r.stream, r.seq) for r in rows if r.state == "deleted"
    }
    assert all(d["reason"] == "disk pressure" for d in deletions)
    for row in settled:
        assert row.manifest is not None
        assert SignedManifest.model_validate_json(row.manifest).parsed().partial == row.partial
        assert row.sha256 == stored[(row.stream, row.seq)]
        if row.state == "receipted":
            local = data_dir / "spool" / row.stream / f"{row.seq:010d}.ts"
            assert hashlib.sha256(local.read_bytes()).hexdigest() == row.sha256


def _last_seqs(data_dir: Path) -> dict[str, int]:
    last: dict[str, int] = {}
    for row in catalog_rows(data_dir):
        last[row.stream] = max(last.get(row.stream, 0), row.seq)
    return last


async def _has_event(collector: RunningCollector, kind: str) -> bool:
    return bool(await _events(collector, kind))


async def _verdict_after_full(collector: RunningCollector) -> bool:
    verdicts = await _disk_verdicts(collector)
    full = [i for i, v in enumerate(verdicts) if v[1] == "disk full"]
    return bool(full) and any(v[1] != "disk full" for v in verdicts[full[-1] + 1 :])


async def _backlog_reported(collector: RunningCollector) -> bool:
    heartbeat = (await collector.api(f"/api/v1/devices/{DEVICE}"))["heartbeat"]
    return bool(heartbeat and heartbeat["uploads"]["backlog_segments"] > 0)
