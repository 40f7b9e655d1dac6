"""Recorded segments and the proof that they are complete and unaltered.

The agent writes a segment, fsyncs it, hashes it, and describes it in a :class:`SegmentManifest`
that names the sha256 of the previous manifest of the same stream (a hash chain). It signs the
manifest's exact JSON bytes with the device's Ed25519 key (:class:`SignedManifest`), commits it to
the outbox as a ``segment.recorded`` event, and uploads the file. The collector verifies size,
hash, signature and chain link, stores the file, and answers with a :class:`SignedReceipt`; only
with a receipt may the agent delete its copy.

Signing and verifying need a crypto library, so they live on each side; this module only defines
what is signed.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import NonNegativeFloat

from protocol.wire import (
    SCHEMA_VERSION,
    Base64,
    ComponentId,
    DeviceId,
    NonNegativeInt63,
    PositiveInt63,
    Sha256Hex,
    ShortText,
    UtcDateTime,
    WireModel,
    sha256_hex,
)


class StreamKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class SegmentManifest(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["segment_manifest"] = "segment_manifest"
    device_id: DeviceId
    stream: ComponentId
    """The camera's or the microphone's id: each is its own stream."""
    kind: StreamKind
    seq: PositiveInt63
    """Per stream, never reused."""
    recording_id: UUID
    """The recording session (from a start to a stop) the segment belongs to."""
    boot_id: UUID
    start_at: UtcDateTime
    end_at: UtcDateTime
    start_mono: NonNegativeFloat
    end_mono: NonNegativeFloat
    clock_synced: bool
    container: Literal["mpegts", "fmp4"]
    codec: ShortText
    size: NonNegativeInt63
    sha256: Sha256Hex
    prev_manifest_sha256: Sha256Hex | None = None
    """sha256 of the previous manifest's bytes in this stream; ``None`` for the first."""
    partial: bool = False
    """Finalised after a crash: shorter than planned, but every byte in it is real."""
    alarm: bool = False
    """Recorded around an alarm: uploaded before other segments."""
    pre_roll_s: NonNegativeFloat = 0.0
    """Seconds of this segment recorded before the trigger (first segment of a recording)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SignedManifest(WireModel):
    """A manifest exactly as signed: its JSON bytes, the signature, and the signing key."""

    manifest: str
    signature: Base64
    public_key: Base64

    @classmethod
    def build(
        cls, manifest: SegmentManifest, signature: bytes, public_key: bytes
    ) -> SignedManifest:
        return cls(
            manifest=manifest.model_dump_json(),
            signature=_b64(signature),
            public_key=_b64(public_key),
        )

    def signed_bytes(self) -> bytes:
        return self.manifest.encode()

    def parsed(self) -> SegmentManifest:
        return SegmentManifest.model_validate_json(self.manifest)

    @property
    def manifest_sha256(self) -> str:
        """What the next manifest of the stream names as ``prev_manifest_sha256``."""
        return sha256_hex(self.signed_bytes())


class Receipt(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["receipt"] = "receipt"
    device_id: DeviceId
    stream: ComponentId
    seq: PositiveInt63
    size: NonNegativeInt63
    sha256: Sha256Hex
    manifest_sha256: Sha256Hex
    stored_at: UtcDateTime
    location: ShortText
    """Where the collector keeps the bytes (content-addressed)."""


class SignedReceipt(WireModel):
    receipt: str
    signature: Base64
    public_key: Base64

    @classmethod
    def build(cls, receipt: Receipt, signature: bytes, public_key: bytes) -> SignedReceipt:
        return cls(
            receipt=receipt.model_dump_json(),
            signature=_b64(signature),
            public_key=_b64(public_key),
        )

    def signed_bytes(self) -> bytes:
        return self.receipt.encode()

    def parsed(self) -> Receipt:
        return Receipt.model_validate_json(self.receipt)


__all__ = [
    "Receipt",
    "SegmentManifest",
    "SignedManifest",
    "SignedReceipt",
    "StreamKind",
]
