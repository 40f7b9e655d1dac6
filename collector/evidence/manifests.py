"""The index of every known manifest, fed by ``segment.recorded`` events and by uploads, and the
device keys pinned from ``agent.started`` events.

Events reach the ``events`` table through MQTT ingest, before or after the uploads they describe.
:func:`sync_events` reads the new ones (a cursor on ``events.id``) inside a writer job; each new
manifest may settle the chain link of a stored segment that was waiting for it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from collector.evidence.hooks import TamperFinding, TamperKind
from collector.evidence.keys import verify_signature
from collector.evidence.verify import Chain, key_fingerprint
from protocol.recording import SegmentManifest, SignedManifest

log = logging.getLogger(__name__)

CURSOR_KEY = "events_cursor"


@dataclass
class SyncResult:
    announced: int = 0
    findings: list[TamperFinding] = field(default_factory=list)
    more: bool = False


def state_get(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM evidence_state WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def state_set(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute(
        "INSERT INTO evidence_state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def pinned_key(db: sqlite3.Connection, device_id: str) -> tuple[str, str] | None:
    row = db.execute(
        "SELECT public_key, source FROM evidence_keys WHERE device_id = ?", (device_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def pin_key(
    db: sqlite3.Connection, device_id: str, public_key: str, source: str, now: datetime
) -> TamperFinding | None:
    """Pin the device's key if it has none; a different key than the pinned one is a finding."""
    pinned = pinned_key(db, device_id)
    if pinned is None:
        db.execute(
            "INSERT INTO evidence_keys (device_id, public_key, source, pinned_at) "
            "VALUES (?, ?, ?, ?)",
            (device_id, public_key, source, now.isoformat()),
        )
        log.info(
            "evidence.key_pinned device=%s key=%s source=%s",
            device_id, key_fingerprint(public_key)[:16], source,
        )  # fmt: skip
        return None
    if pinned[0] == public_key:
        return None
    return TamperFinding(
        device_id,
        None,
        None,
        TamperKind.KEY_CHANGED,
        f"{source} names key {key_fingerprint(public_key)[:16]}, but key "
        f"{key_fingerprint(pinned[0])[:16]} is pinned (from {pinned[1]})",
    )


def sync_events(db: sqlite3.Connection, now: datetime, limit: int = 2000) -> SyncResult:
    """Index the manifests and keys of events committed since the last call."""
    result = SyncResult()
    cursor = state_get(db, CURSOR_KEY)
    (highest,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    rows = db.execute(
        "SELECT id, device_id, seq, type, body FROM events WHERE id > ? AND id <= ? "
        "AND type IN ('segment.recorded', 'agent.started') ORDER BY id LIMIT ?",
        (cursor, highest, limit),
    ).fetchall()
    for _, device_id, event_seq, event_type, body in rows:
        try:
            parsed = json.loads(body)
            if event_type == "agent.started":
                key = parsed.get("public_key")
                finding = pin_key(db, device_id, key, "agent.started", now) if key else None
                result.findings.extend([finding] if finding else [])
                continue
            signed = SignedManifest.model_validate(parsed["manifest"])
            manifest = signed.parsed()
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            log.warning(
                "evidence.event_unreadable device=%s seq=%d error=%s", device_id, event_seq, exc
            )
            continue
        if manifest.device_id != device_id:
            log.warning(
                "evidence.event_foreign_manifest device=%s seq=%d names=%s",
                device_id, event_seq, manifest.device_id,
            )  # fmt: skip
            continue
        result.findings += remember_manifest(
            db, signed, manifest, source="event", event_seq=event_seq, now=now
        )
        result.announced += 1
    result.more = len(rows) == limit
    state_set(db, CURSOR_KEY, rows[-1][0] if result.more else highest)
    return result


def remember_manifest(
    db: sqlite3.Connection,
    signed: SignedManifest,
    manifest: SegmentManifest,
    *,
    source: str,
    event_seq: int | None,
    now: datetime,
) -> list[TamperFinding]:
    """Add a manifest to the index. Its signature is checked against the pinned key (or, with
    none pinned yet, the key it names). A second, different, validly signed manifest for the same
    seq is a finding and is not indexed."""
    pinned = pinned_key(db, manifest.device_id)
    key = pinned[0] if pinned else signed.public_key
    signature_ok = key == signed.public_key and verify_signature(
        key, signed.signed_bytes(), signed.signature
    )
    manifest_sha256 = signed.manifest_sha256
    pk = (manifest.device_id, manifest.stream, manifest.seq)
    existing = db.execute(
        "SELECT manifest_sha256, signature_ok FROM evidence_manifests "
        "WHERE device_id = ? AND stream = ? AND seq = ?",
        pk,
    ).fetchone()
    if existing is not None and existing[0] == manifest_sha256:
        if event_seq is not None:
            db.execute(
                "UPDATE evidence_manifests SET event_seq = COALESCE(event_seq, ?) "
                "WHERE device_id = ? AND stream = ? AND seq = ?",
                (event_seq, *pk),
            )
        return []
    if existing is not None and (existing[1] or not signature_ok):
        if not signature_ok:
            return []
        return [
            TamperFinding(
                manifest.device_id,
                manifest.stream,
                manifest.seq,
                TamperKind.SEQ_CONFLICT,
                f"a second manifest ({manifest_sha256}, from {source}) for a seq already known "
                f"with manifest {existing[0]}",
            )
        ]
    db.execute(
        "INSERT OR REPLACE INTO evidence_manifests (device_id, stream, seq, kind, manifest_sha256, "
        "prev_manifest_sha256, sha256, size, start_at, end_at, start_ts, end_ts, recording_id, "
        "signed, signature_ok, source, event_seq, seen_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *pk, manifest.kind.value, manifest_sha256, manifest.prev_manifest_sha256,
            manifest.sha256, manifest.size, manifest.start_at.isoformat(),
            manifest.end_at.isoformat(), manifest.start_at.timestamp(),
            manifest.end_at.timestamp(), str(manifest.recording_id), signed.model_dump_json(),
            int(signature_ok), source, event_seq, now.isoformat(),
        ),
    )  # fmt: skip
    if not signature_ok:
        log.warning(
            "evidence.manifest_bad_signature device=%s stream=%s seq=%d source=%s",
            *pk, source,
        )  # fmt: skip
        return []
    return recheck_successor(db, manifest, manifest_sha256, now)


def recheck_successor(
    db: sqlite3.Connection, manifest: SegmentManifest, manifest_sha256: str, now: datetime
) -> list[TamperFinding]:
    """Settle the chain link of the stored segment that follows ``manifest``, if it waits."""
    successor = (manifest.device_id, manifest.stream, manifest.seq + 1)
    row = db.execute(
        "SELECT signed FROM evidence_segments WHERE device_id = ? AND stream = ? AND seq = ? "
        "AND chain = ?",
        (*successor, Chain.UNVERIFIED.value),
    ).fetchone()
    if row is None:
        return []
    claimed = SignedManifest.model_validate_json(row[0]).parsed().prev_manifest_sha256
    if claimed == manifest_sha256:
        chain, detail = Chain.VERIFIED, f"matches the manifest of seq {manifest.seq}"
    else:
        chain, detail = (
            Chain.BROKEN,
            f"prev_manifest_sha256 is {claimed}, but the manifest of seq {manifest.seq} "
            f"(learnt {now.isoformat()}) has sha256 {manifest_sha256}",
        )
    db.execute(
        "UPDATE evidence_segments SET chain = ?, chain_detail = ? "
        "WHERE device_id = ? AND stream = ? AND seq = ?",
        (chain.value, detail, *successor),
    )
    if chain is Chain.VERIFIED:
        return []
    return [TamperFinding(*successor, TamperKind.CHAIN_BROKEN, detail)]
