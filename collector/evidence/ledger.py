"""The writer jobs of an upload's life: admit it (POST), check it when its last byte is durable,
record it as evidence once its file is in the store. Each runs in one writer transaction and first
indexes the events committed since the last look, so what it checks is current."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from collector.evidence.hooks import TamperFinding
from collector.evidence.keys import CollectorKey
from collector.evidence.manifests import pin_key, remember_manifest, sync_events
from collector.evidence.receipts import issue_receipt
from collector.evidence.verify import Accepted, Duplicate, Refusal, Verdict, check_manifest
from protocol.recording import SegmentManifest, SignedManifest


class UploadState(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    REJECTED = "rejected"
    TERMINATED = "terminated"
    EXPIRED = "expired"


@dataclass(frozen=True)
class UploadRow:
    upload_id: str
    device_id: str
    stream: str
    seq: int
    length: int
    sha256: str
    signed: SignedManifest
    metadata: str
    state: UploadState
    reason: str | None
    receipt: str | None

    @property
    def manifest(self) -> SegmentManifest:
        return self.signed.parsed()


@dataclass
class JobOutcome:
    """What a job decided: refused, or a receipt (new or, for a duplicate, the one given before),
    or neither (admitted / may be stored). Tamper findings go to the hooks either way."""

    refusal: Refusal | None = None
    receipt: str | None = None
    duplicate: bool = False
    findings: list[TamperFinding] = field(default_factory=list)

    def take(self, verdict: Verdict) -> None:
        if isinstance(verdict, Refusal):
            self.refusal = verdict
        elif isinstance(verdict, Duplicate):
            self.receipt, self.duplicate = verdict.receipt, True


_UPLOAD_COLUMNS = (
    "upload_id, device_id, stream, seq, length, sha256, signed, metadata, state, reason, receipt"
)


def get_upload(db: sqlite3.Connection, upload_id: str) -> UploadRow | None:
    row = db.execute(
        f"SELECT {_UPLOAD_COLUMNS} FROM evidence_uploads WHERE upload_id = ?",  # noqa: S608
        (upload_id,),
    ).fetchone()
    if row is None:
        return None
    return UploadRow(
        upload_id=row[0],
        device_id=row[1],
        stream=row[2],
        seq=row[3],
        length=row[4],
        sha256=row[5],
        signed=SignedManifest.model_validate_json(row[6]),
        metadata=row[7],
        state=UploadState(row[8]),
        reason=row[9],
        receipt=row[10],
    )


def uploads_in_state(db: sqlite3.Connection, state: UploadState) -> list[UploadRow]:
    ids = [
        row[0]
        for row in db.execute("SELECT upload_id FROM evidence_uploads WHERE state = ?", (state,))
    ]
    return [upload for upload_id in ids if (upload := get_upload(db, upload_id)) is not None]


def set_upload_state(
    db: sqlite3.Connection,
    upload_id: str,
    state: UploadState,
    now: datetime,
    *,
    reason: str | None = None,
    receipt: str | None = None,
) -> None:
    db.execute(
        "UPDATE evidence_uploads SET state = ?, reason = ?, receipt = COALESCE(?, receipt), "
        "finished_at = ? WHERE upload_id = ?",
        (state.value, reason, receipt, now.isoformat(), upload_id),
    )


def admit(
    db: sqlite3.Connection,
    upload_id: str,
    signed: SignedManifest,
    metadata: str,
    now: datetime,
) -> JobOutcome:
    """POST: refuse an upload that can never become evidence, else create it. An upload of a
    segment already stored with this manifest is created too (a plain tus client goes on to
    send its bytes), and the outcome carries the receipt for clients that stop there."""
    manifest = signed.parsed()
    outcome = JobOutcome(findings=sync_events(db, now).findings)
    outcome.take(check_manifest(db, signed, manifest))
    if outcome.refusal is not None:
        return outcome
    db.execute(
        "INSERT INTO evidence_uploads (upload_id, device_id, stream, seq, length, sha256, "
        "manifest_sha256, signed, metadata, state, created_at, created_ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            upload_id, manifest.device_id, manifest.stream, manifest.seq, manifest.size,
            manifest.sha256, signed.manifest_sha256, signed.model_dump_json(), metadata,
            UploadState.RECEIVING.value, now.isoformat(), now.timestamp(),
        ),
    )  # fmt: skip
    return outcome


def precheck(db: sqlite3.Connection, upload: UploadRow, now: datetime) -> JobOutcome:
    """The last byte is durable and its hash matches: may it become evidence? A refusal marks
    the upload rejected; a duplicate completes it with the receipt already given."""
    outcome = JobOutcome(findings=sync_events(db, now).findings)
    verdict = check_manifest(db, upload.signed, upload.manifest)
    outcome.take(verdict)
    _settle(db, upload, verdict, now)
    return outcome


def record(
    db: sqlite3.Connection,
    upload: UploadRow,
    now: datetime,
    key: CollectorKey,
    location: str,
) -> JobOutcome:
    """The file is in the store: record the segment and issue its receipt (checked again, in
    case another upload of the same segment finished in between)."""
    manifest, signed = upload.manifest, upload.signed
    outcome = JobOutcome(findings=sync_events(db, now).findings)
    verdict = check_manifest(db, signed, manifest)
    if not isinstance(verdict, Accepted):
        outcome.take(verdict)
        _settle(db, upload, verdict, now)
        return outcome
    if verdict.pin:
        pin_key(db, manifest.device_id, signed.public_key, "first_upload", now)
    receipt = issue_receipt(key, manifest, signed.manifest_sha256, now, location).model_dump_json()
    db.execute(
        "INSERT INTO evidence_segments (device_id, stream, seq, kind, container, site, room, "
        "sha256, size, manifest_sha256, signed, start_at, end_at, start_ts, end_ts, stored_at, "
        "stored_ts, location, key_source, chain, chain_detail, receipt, upload_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            manifest.device_id, manifest.stream, manifest.seq, manifest.kind.value,
            manifest.container, verdict.site, verdict.room, manifest.sha256, manifest.size,
            signed.manifest_sha256, signed.model_dump_json(), manifest.start_at.isoformat(),
            manifest.end_at.isoformat(), manifest.start_at.timestamp(),
            manifest.end_at.timestamp(), now.isoformat(), now.timestamp(), location,
            verdict.key_source, verdict.chain.value, verdict.chain_detail, receipt,
            upload.upload_id,
        ),
    )  # fmt: skip
    outcome.findings += remember_manifest(
        db, signed, manifest, source="upload", event_seq=None, now=now
    )
    set_upload_state(db, upload.upload_id, UploadState.COMPLETE, now, receipt=receipt)
    outcome.receipt = receipt
    return outcome


def _settle(db: sqlite3.Connection, upload: UploadRow, verdict: Verdict, now: datetime) -> None:
    if isinstance(verdict, Refusal):
        set_upload_state(
            db,
            upload.upload_id,
            UploadState.REJECTED,
            now,
            reason=f"{verdict.code}: {verdict.message}",
        )
    elif isinstance(verdict, Duplicate):
        set_upload_state(db, upload.upload_id, UploadState.COMPLETE, now, receipt=verdict.receipt)


def reject(db: sqlite3.Connection, upload_id: str, code: str, message: str, now: datetime) -> None:
    set_upload_state(db, upload_id, UploadState.REJECTED, now, reason=f"{code}: {message}")


def sha256_in_use(db: sqlite3.Connection, sha256: str) -> bool:
    """Whether a stored (not purged) segment has this content."""
    row = db.execute(
        "SELECT 1 FROM evidence_segments WHERE sha256 = ? AND purged_at IS NULL LIMIT 1",
        (sha256,),
    ).fetchone()
    return row is not None
