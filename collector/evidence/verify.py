"""What a segment's manifest must satisfy before its bytes become evidence.

Run inside a database writer job, so the answer and what is recorded after it come from one
consistent view. The size and the whole-file sha256 are checked by the upload itself; this checks
the rest: the device is enrolled, the manifest is signed by the device's pinned key, the segment is
not already stored with other content, and the hash-chain link to the previous manifest.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from collector.evidence.hooks import TamperKind
from collector.evidence.keys import verify_signature
from protocol.recording import SegmentManifest, SignedManifest
from protocol.wire import sha256_hex


class Chain(StrEnum):
    VERIFIED = "verified"
    """``prev_manifest_sha256`` matches the previous manifest of the stream."""
    START = "start"
    """The first segment of the stream (seq 1, no previous manifest)."""
    UNVERIFIED = "unverified"
    """The previous manifest is not known yet; checked again when it arrives."""
    BROKEN = "broken"
    """Found not to match once the previous manifest arrived (a tamper finding)."""


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    tamper: TamperKind | None = None


@dataclass(frozen=True)
class Duplicate:
    """Already stored with this very manifest: the answer is the receipt already given."""

    receipt: str


@dataclass(frozen=True)
class Accepted:
    site: str
    room: str
    key_source: str
    pin: bool
    """The device had no pinned key: pin the manifest's key (trust on first use)."""
    chain: Chain
    chain_detail: str


Verdict = Refusal | Duplicate | Accepted


def key_fingerprint(public_key_b64: str) -> str:
    """The sha256 of the raw key, hex (as ``/api/v1/keys`` shows it)."""
    try:
        return sha256_hex(base64.b64decode(public_key_b64, validate=True))
    except (ValueError, binascii.Error):
        return "(not base64)"


def check_manifest(
    db: sqlite3.Connection, signed: SignedManifest, manifest: SegmentManifest
) -> Verdict:
    device_id, stream, seq = manifest.device_id, manifest.stream, manifest.seq
    where = f"{device_id}/{stream}/{seq}"
    device = db.execute(
        "SELECT site, room FROM devices WHERE device_id = ?", (device_id,)
    ).fetchone()
    if device is None:
        return Refusal(403, "unknown_device", f"device {device_id!r} is not enrolled")
    pinned = db.execute(
        "SELECT public_key, source FROM evidence_keys WHERE device_id = ?", (device_id,)
    ).fetchone()
    if pinned is not None and pinned[0] != signed.public_key:
        return Refusal(
            403,
            "key_mismatch",
            f"{where} is signed with key {key_fingerprint(signed.public_key)[:16]}, but the "
            f"device's pinned key is {key_fingerprint(pinned[0])[:16]} (from {pinned[1]})",
            TamperKind.KEY_CHANGED,
        )
    key = pinned[0] if pinned is not None else signed.public_key
    if not verify_signature(key, signed.signed_bytes(), signed.signature):
        return Refusal(403, "bad_signature", f"the manifest signature of {where} does not verify")
    known = _known(db, signed, manifest)
    if known is not None:
        return known
    chain, detail = _chain(db, manifest)
    if chain is None:
        return Refusal(422, "chain_mismatch", detail)
    return Accepted(
        site=device[0],
        room=device[1],
        key_source=pinned[1] if pinned is not None else "first_upload",
        pin=pinned is None,
        chain=chain,
        chain_detail=detail,
    )


def _known(
    db: sqlite3.Connection, signed: SignedManifest, manifest: SegmentManifest
) -> Duplicate | Refusal | None:
    """The answer when the segment is already stored, or announced with another manifest."""
    device_id, stream, seq = manifest.device_id, manifest.stream, manifest.seq
    where = f"{device_id}/{stream}/{seq}"
    manifest_sha256 = signed.manifest_sha256
    stored = db.execute(
        "SELECT manifest_sha256, sha256, receipt FROM evidence_segments "
        "WHERE device_id = ? AND stream = ? AND seq = ?",
        (device_id, stream, seq),
    ).fetchone()
    if stored is not None:
        if stored[0] == manifest_sha256:
            return Duplicate(stored[2])
        return Refusal(
            409,
            "segment_conflict",
            f"{where} is already stored with content sha256 {stored[1]} (manifest {stored[0]}); "
            f"this upload has content {manifest.sha256} (manifest {manifest_sha256})",
            TamperKind.SEQ_CONFLICT,
        )
    announced = db.execute(
        "SELECT manifest_sha256, sha256 FROM evidence_manifests "
        "WHERE device_id = ? AND stream = ? AND seq = ? AND signature_ok = 1",
        (device_id, stream, seq),
    ).fetchone()
    if announced is not None and announced[0] != manifest_sha256:
        return Refusal(
            409,
            "segment_conflict",
            f"the device announced {where} with content sha256 {announced[1]} (manifest "
            f"{announced[0]}); this upload has content {manifest.sha256} (manifest "
            f"{manifest_sha256})",
            TamperKind.SEQ_CONFLICT,
        )
    return None


def _chain(db: sqlite3.Connection, manifest: SegmentManifest) -> tuple[Chain | None, str]:
    """The chain state of a new segment, or ``None`` (with the reason) when the link is wrong."""
    claimed = manifest.prev_manifest_sha256
    previous = db.execute(
        "SELECT manifest_sha256 FROM evidence_manifests "
        "WHERE device_id = ? AND stream = ? AND seq = ? AND signature_ok = 1",
        (manifest.device_id, manifest.stream, manifest.seq - 1),
    ).fetchone()
    if previous is None:
        if claimed is None and manifest.seq == 1:
            return Chain.START, "first segment of the stream"
        return Chain.UNVERIFIED, f"seq {manifest.seq - 1} is not known yet"
    if claimed == previous[0]:
        return Chain.VERIFIED, f"matches the manifest of seq {manifest.seq - 1}"
    return None, (
        f"prev_manifest_sha256 of {manifest.device_id}/{manifest.stream}/{manifest.seq} is "
        f"{claimed}, but the manifest of seq {manifest.seq - 1} has sha256 {previous[0]}"
    )
