"""Segment manifests: the facts of one segment, chained to the stream's previous manifest and
signed with the device key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from edge_agent.recording.keys import DeviceKey
from protocol.recording import SegmentManifest, SignedManifest, StreamKind


@dataclass(frozen=True)
class SegmentFacts:
    stream: str
    kind: StreamKind
    seq: int
    recording_id: UUID
    boot_id: UUID
    start_at: datetime
    end_at: datetime
    start_mono: float
    end_mono: float
    clock_synced: bool
    codec: str
    size: int
    sha256: str
    partial: bool
    alarm: bool
    pre_roll_s: float


class ManifestSigner:
    def __init__(self, device_id: str, key: DeviceKey) -> None:
        self.device_id = device_id
        self._key = key

    @property
    def public_key_b64(self) -> str:
        return self._key.public_key_b64

    def sign(self, facts: SegmentFacts, prev_manifest_sha256: str | None) -> SignedManifest:
        manifest = SegmentManifest(
            device_id=self.device_id,
            stream=facts.stream,
            kind=facts.kind,
            seq=facts.seq,
            recording_id=facts.recording_id,
            boot_id=facts.boot_id,
            start_at=facts.start_at,
            end_at=max(facts.end_at, facts.start_at),
            start_mono=round(facts.start_mono, 6),
            end_mono=round(max(facts.end_mono, facts.start_mono), 6),
            clock_synced=facts.clock_synced,
            container="mpegts",
            codec=facts.codec,
            size=facts.size,
            sha256=facts.sha256,
            prev_manifest_sha256=prev_manifest_sha256,
            partial=facts.partial,
            alarm=facts.alarm,
            pre_roll_s=round(max(0.0, facts.pre_roll_s), 3),
        )
        signed_bytes = manifest.model_dump_json().encode()
        return SignedManifest.build(
            manifest, self._key.sign(signed_bytes), self._key.public_key_raw
        )
