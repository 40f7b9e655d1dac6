"""Helpers shared by the upload tests (no tests of its own): a spool filled the way the recorder
fills it, rooms that record real media and upload it, and the agent's catalog read as an auditor
would."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.recording.catalog import SegmentOpening, SpoolCatalog, SpooledSegment
from edge_agent.recording.keys import DeviceKey
from edge_agent.recording.manifest import ManifestSigner, SegmentFacts
from edge_agent.recording.segment_file import publish
from edge_agent.upload.keypin import CollectorKeyPin
from edge_agent.upload.uploader import Uploader, UploaderSettings
from firmware_config.schema import AgentConfig
from protocol.clock import Clock, SystemClock
from protocol.events import EventBodyType
from protocol.recording import StreamKind
from simulators.room import SimulatedRoom
from tests.helpers import make_room

DEVICE = "ir-101"


class Spool:
    """A device's spool filled segment by segment, exactly as the recorder leaves it: file fsynced
    and renamed, manifest signed and chained, segment announced."""

    def __init__(self, root: Path, device_id: str = DEVICE, clock: Clock | None = None) -> None:
        self.root = root
        self.clock = clock or SystemClock()
        self.catalog = SpoolCatalog.open(root / "spool", self.clock)
        self.key = DeviceKey.load_or_create(root / "device_key.ed25519")
        self.signer = ManifestSigner(device_id, self.key)
        self.boot_id = uuid.uuid4()
        self.mono = 1000.0

    def add(
        self,
        stream: str,
        data: bytes,
        *,
        alarm: bool = False,
        start_at: datetime | None = None,
        announce: bool = True,
    ) -> SpooledSegment:
        seq = self.catalog.last_seqs().get(stream, 0) + 1
        start_at = start_at or datetime.now(UTC)
        opening = SegmentOpening(
            stream=stream,
            kind=StreamKind.VIDEO,
            seq=seq,
            codec="h264",
            recording_id=uuid.uuid4(),
            boot_id=self.boot_id,
            path=f"{stream}/{seq:010d}.ts",
            start_mono=self.mono,
            start_at=start_at,
            clock_synced=True,
            pre_roll_s=0.0,
        )
        self.catalog.begin(opening)
        final = self.root / "spool" / opening.path
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        part.write_bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        end_at = start_at + timedelta(seconds=2)
        self.catalog.mark_closed(
            stream, seq, size=len(data), sha256=sha256, end_mono=self.mono + 2, end_at=end_at
        )
        publish(part, final)
        facts = SegmentFacts(
            stream=stream, kind=StreamKind.VIDEO, seq=seq, recording_id=opening.recording_id,
            boot_id=self.boot_id, start_at=start_at, end_at=end_at, start_mono=self.mono,
            end_mono=self.mono + 2, clock_synced=True, codec="h264", size=len(data),
            sha256=sha256, partial=False, alarm=alarm, pre_roll_s=0.0,
        )  # fmt: skip
        self.mono += 2
        self.catalog.mark_recorded(self.signer.sign(facts, self.catalog.chain_head(stream)))
        if announce:
            self.catalog.mark_announced(stream, seq)
        segment = self.catalog.get(stream, seq)
        assert segment is not None
        return segment

    def uploader(
        self, collector_url: str, events: list[EventBodyType], **settings: Any
    ) -> Uploader:
        defaults: dict[str, Any] = {
            "idle_poll_s": 0.05,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.2,
            "request_timeout_s": 10.0,
        }
        return Uploader(
            self.catalog,
            UploaderSettings(collector_url=collector_url, **{**defaults, **settings}),
            clock=self.clock,
            emit=events.append,
            key_pin=CollectorKeyPin(self.root / "collector_key.b64"),
        )


def segment_data(size: int, seed: int) -> bytes:
    """Deterministic bytes that look like nothing in particular."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def recording_room(
    broker_url: str,
    collector_url: str,
    data_dir: Path,
    *,
    segment_s: float = 2.0,
    upload: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    device_id: str = DEVICE,
) -> SimulatedRoom:
    """A room recording real H.264 and AAC (synthetic sources, the real recorder) and uploading
    it to ``collector_url``; ``data_dir`` is the agent's own data directory."""
    base = make_room(broker_url, collector_url, data_dir.parent, device_id)
    config: AgentConfig = base.config
    config = config.model_copy(
        update={
            "recording": config.recording.model_copy(update={"segment_s": segment_s}),
            "upload": config.upload.model_copy(update={"retry_max_s": 2.0, **(upload or {})}),
            "storage": config.storage.model_copy(update={"data_dir": data_dir, **(storage or {})}),
        }
    )
    return SimulatedRoom(config, media="synthetic")


@dataclass(frozen=True)
class Row:
    stream: str
    seq: int
    state: str
    partial: bool
    size: int | None
    sha256: str | None
    manifest: str | None
    receipt: str | None


def catalog_rows(data_dir: Path) -> list[Row]:
    """Every segment of an agent's spool catalog, read-only."""
    path = data_dir / "spool" / "catalog.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT stream, seq, state, partial, size, sha256, manifest, receipt FROM segments"
            " ORDER BY stream, seq"
        ).fetchall()
    return [Row(s, q, st, bool(p), z, h, m, r) for s, q, st, p, z, h, m, r in rows]


def flip_byte(path: Path, offset: int) -> None:
    """Flip one bit of a file in place (what a failing SD card does)."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
        handle.flush()
        os.fsync(handle.fileno())
