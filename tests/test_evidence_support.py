"""Helpers shared by the evidence tests (no tests of its own): device keys that sign manifests
the way an agent does (with ``cryptography``, not the agent's code), a collector started with an
injectable clock, tus requests, and events inserted through the database writer."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.evidence import EVIDENCE
from collector.evidence.service import EvidenceService
from protocol.clock import SystemClock
from protocol.recording import SegmentManifest, SignedManifest, StreamKind
from tests.helpers import RunningCollector

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
UPLOADS = "/api/v1/uploads"
TUS = {"Tus-Resumable": "1.0.0"}


class ShiftableClock(SystemClock):
    """The real clock, whose wall time can be moved ahead (days of retention in a test)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return super().now() + self.offset


class DeviceKey:
    """An agent's Ed25519 key."""

    def __init__(self) -> None:
        self._private = Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_b64 = base64.b64encode(raw).decode()

    def sign(self, manifest: SegmentManifest) -> SignedManifest:
        return SignedManifest.build(
            manifest,
            self._private.sign(manifest.model_dump_json().encode()),
            base64.b64decode(self.public_b64),
        )


@dataclass
class Stream:
    """Chained segments of one stream of one device, signed by ``key``."""

    device_id: str
    key: DeviceKey
    stream: str = "cam1"
    kind: StreamKind = StreamKind.VIDEO
    start: datetime = T0
    duration_s: float = 10.0
    seq: int = 0
    prev: str | None = None
    recording_id: uuid.UUID = field(default_factory=uuid.uuid4)
    boot_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def manifest(self, data: bytes, seq: int, prev: str | None, **changes: Any) -> SegmentManifest:
        start = self.start + timedelta(seconds=self.duration_s * (seq - 1))
        fields: dict[str, Any] = {
            "device_id": self.device_id,
            "stream": self.stream,
            "kind": self.kind,
            "seq": seq,
            "recording_id": self.recording_id,
            "boot_id": self.boot_id,
            "start_at": start,
            "end_at": start + timedelta(seconds=self.duration_s),
            "start_mono": 100.0 + seq * self.duration_s,
            "end_mono": 100.0 + (seq + 1) * self.duration_s,
            "clock_synced": True,
            "container": "mpegts",
            "codec": "h264",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "prev_manifest_sha256": prev,
        }
        fields.update(changes)
        return SegmentManifest(**fields)

    def next(self, data: bytes, **changes: Any) -> SignedManifest:
        """The next segment of the chain."""
        self.seq += 1
        signed = self.key.sign(self.manifest(data, self.seq, self.prev, **changes))
        self.prev = signed.manifest_sha256
        return signed


def segment_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking content."""
    block = b"".join(hashlib.sha512(f"{seed}:{i}".encode()).digest() for i in range(1024))
    whole = bytearray()
    counter = 0
    while len(whole) < size:
        whole += hashlib.sha256(f"{seed}/{counter}".encode()).digest() + block
        counter += 1
    return bytes(whole[:size])


def metadata(signed: SignedManifest, **extra: bytes) -> str:
    pairs = {"manifest": signed.model_dump_json().encode(), **extra}
    return ",".join(f"{k} {base64.b64encode(v).decode()}" for k, v in pairs.items())


def evidence_service(running: RunningCollector) -> EvidenceService:
    service = running.app[EVIDENCE].value.service
    assert service is not None
    return service


async def enroll(
    running: RunningCollector, device_id: str, site: str = "hq", room: str = "interrogation-1"
) -> None:
    body = {"device_id": device_id, "site": site, "room": room, "room_kind": "interrogation"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{running.url}/api/v1/devices", json=body) as response,
    ):
        assert response.status in (200, 201), await response.text()


async def insert_events(
    running: RunningCollector, device_id: str, events: list[tuple[datetime, dict[str, Any]]]
) -> None:
    """Commit events (``(at, body)``) for a device through the database writer, after its
    highest seq, as the ingest would."""

    def job(db: sqlite3.Connection) -> None:
        (highest,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE device_id = ?", (device_id,)
        ).fetchone()
        for offset, (at, body) in enumerate(events, start=1):
            db.execute(
                "INSERT INTO events (device_id, seq, boot_id, type, alarm, at, mono, "
                "clock_synced, received_at, body) VALUES (?, ?, ?, ?, 0, ?, 0, 1, ?, ?)",
                (
                    device_id,
                    highest + offset,
                    str(uuid.UUID(int=1)),
                    body["type"],
                    at.isoformat(),
                    at.isoformat(),
                    json.dumps(body),
                ),
            )

    await running.store.writer.submit(job)


def segment_event(signed: SignedManifest) -> dict[str, Any]:
    return {"type": "segment.recorded", "manifest": signed.model_dump(mode="json")}


def agent_started(public_key: str) -> dict[str, Any]:
    return {
        "type": "agent.started",
        "version": "test",
        "config_hash": "0" * 64,
        "boot_no": 1,
        "previous_shutdown": "first",
        "inputs": {},
        "public_key": public_key,
    }


async def create_upload(
    http: aiohttp.ClientSession, url: str, signed: SignedManifest, length: int | None = None
) -> aiohttp.ClientResponse:
    headers = {
        **TUS,
        "Upload-Length": str(signed.parsed().size if length is None else length),
        "Upload-Metadata": metadata(signed),
    }
    async with http.post(f"{url}{UPLOADS}", headers=headers) as response:
        await response.read()
        return response


async def patch(
    http: aiohttp.ClientSession,
    location: str,
    offset: int,
    data: bytes,
    **headers: str,
) -> aiohttp.ClientResponse:
    sent = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    async with http.patch(location, data=data, headers=sent) as response:
        await response.read()
        return response


async def upload(
    http: aiohttp.ClientSession, url: str, signed: SignedManifest, data: bytes
) -> aiohttp.ClientResponse:
    """POST and one PATCH with everything; the last response (POST's if it refused)."""
    created = await create_upload(http, url, signed)
    if created.status != 201:
        return created
    return await patch(http, f"{url}{created.headers['Location']}", 0, data)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
