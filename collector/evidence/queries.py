"""Read queries behind the evidence API (read-only connections, rows as ``sqlite3.Row``)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from collector.evidence.holds import holds_of_segment
from collector.evidence.verify import key_fingerprint
from protocol.recording import SignedManifest

_STATE = """
    CASE
        WHEN s.seq IS NOT NULL AND s.purged_at IS NULL THEN 'uploaded'
        WHEN s.seq IS NOT NULL THEN 'purged'
        WHEN EXISTS (SELECT 1 FROM evidence_uploads u WHERE u.device_id = m.device_id
                     AND u.stream = m.stream AND u.seq = m.seq AND u.state = 'receiving')
            THEN 'uploading'
        ELSE 'announced'
    END
"""


@dataclass(frozen=True)
class SegmentFilter:
    device_id: str | None = None
    stream: str | None = None
    site: str | None = None
    room: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None
    state: str | None = None
    limit: int = 500
    offset: int = 0


def list_segments(db: sqlite3.Connection, where: SegmentFilter) -> list[dict[str, Any]]:
    """Known segments (announced by an event, uploaded, or both) overlapping the time range,
    in time order, each with its upload state."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("m.device_id = ?", where.device_id),
        ("m.stream = ?", where.stream),
        ("d.site = ?", where.site),
        ("d.room = ?", where.room),
        ("m.end_ts >= ?", where.since_ts),
        ("m.start_ts < ?", where.until_ts),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    state_clause = ""
    if where.state is not None:
        state_clause = "WHERE upload_state = ?"
        params.append(where.state)
    rows = db.execute(
        f"""
        SELECT * FROM (
            SELECT m.device_id, m.stream, m.seq, m.kind, m.start_at, m.end_at, m.size, m.sha256,
                   m.manifest_sha256, m.source, m.event_seq, m.signature_ok, d.site, d.room,
                   s.stored_at, s.chain, s.purged_at, {_STATE} AS upload_state
            FROM evidence_manifests m
            LEFT JOIN devices d ON d.device_id = m.device_id
            LEFT JOIN evidence_segments s
                ON s.device_id = m.device_id AND s.stream = m.stream AND s.seq = m.seq
            {"WHERE " + " AND ".join(clauses) if clauses else ""}
            ORDER BY m.start_ts, m.device_id, m.stream, m.seq
        ) {state_clause} LIMIT ? OFFSET ?
        """,  # noqa: S608
        (*params, where.limit, where.offset),
    ).fetchall()
    segments = []
    for row in rows:
        segment = dict(row)
        segment["signature_ok"] = bool(segment["signature_ok"])
        segment["announced"] = segment.pop("event_seq") is not None
        segments.append(segment)
    return segments


def segment_detail(
    db: sqlite3.Connection, device_id: str, stream: str, seq: int
) -> dict[str, Any] | None:
    key = (device_id, stream, seq)
    stored = db.execute(
        "SELECT * FROM evidence_segments WHERE device_id = ? AND stream = ? AND seq = ?", key
    ).fetchone()
    known = db.execute(
        "SELECT * FROM evidence_manifests WHERE device_id = ? AND stream = ? AND seq = ?", key
    ).fetchone()
    if stored is None and known is None:
        return None
    signed = SignedManifest.model_validate_json((stored or known)["signed"])
    pinned = db.execute(
        "SELECT public_key, source, pinned_at FROM evidence_keys WHERE device_id = ?", (device_id,)
    ).fetchone()
    detail: dict[str, Any] = {
        "device_id": device_id,
        "stream": stream,
        "seq": seq,
        "manifest": json.loads(signed.manifest),
        "signed_manifest": signed.model_dump(mode="json"),
        "manifest_sha256": signed.manifest_sha256,
        "announced": known is not None and known["event_seq"] is not None,
        "event_seq": known["event_seq"] if known is not None else None,
        "device_key": _key(pinned),
        "upload_state": "announced",
        "verification": None,
        "receipt": None,
        "holds": [],
    }
    if stored is not None:
        detail["upload_state"] = "purged" if stored["purged_at"] else "uploaded"
        detail["site"], detail["room"] = stored["site"], stored["room"]
        detail["stored_at"], detail["purged_at"] = stored["stored_at"], stored["purged_at"]
        detail["location"] = stored["location"]
        detail["verification"] = {
            "size": "ok",
            "sha256": "ok",
            "signature": "ok",
            "key_source": stored["key_source"],
            "enrolled": "ok",
            "chain": stored["chain"],
            "chain_detail": stored["chain_detail"],
        }
        detail["receipt"] = json.loads(stored["receipt"])
        detail["holds"] = holds_of_segment(db, device_id, stream, seq)
    elif known is not None and not known["signature_ok"]:
        detail["verification"] = {"signature": "failed"}
    return detail


def _key(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "public_key": row["public_key"],
        "fingerprint": key_fingerprint(row["public_key"]),
        "source": row["source"],
        "pinned_at": row["pinned_at"],
    }


def device_key(db: sqlite3.Connection, device_id: str) -> dict[str, Any] | None:
    return _key(
        db.execute(
            "SELECT public_key, source, pinned_at FROM evidence_keys WHERE device_id = ?",
            (device_id,),
        ).fetchone()
    )


def stored_content(
    db: sqlite3.Connection, device_id: str, stream: str, seq: int
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT sha256, size, kind, container, purged_at, receipt FROM evidence_segments "
        "WHERE device_id = ? AND stream = ? AND seq = ?",
        (device_id, stream, seq),
    ).fetchone()
    return row


def stream_summaries(
    db: sqlite3.Connection, device_id: str, stream: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Per stream: the seq range known, how many are announced and uploaded, the seqs missing
    altogether (gaps between the first and the highest known) and those known but not uploaded."""
    params: list[Any] = [device_id]
    stream_clause = ""
    if stream is not None:
        stream_clause = "AND stream = ?"
        params.append(stream)
    streams = db.execute(
        "SELECT stream, kind, MIN(seq), MAX(seq), COUNT(*), SUM(event_seq IS NOT NULL) "  # noqa: S608
        f"FROM evidence_manifests WHERE device_id = ? {stream_clause} "
        "GROUP BY stream ORDER BY stream",
        params,
    ).fetchall()
    summaries = []
    for name, kind, first, last, known, announced in streams:
        uploaded = db.execute(
            "SELECT COUNT(*) FROM evidence_segments WHERE device_id = ? AND stream = ?",
            (device_id, name),
        ).fetchone()[0]
        gaps = (
            "FROM (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next FROM evidence_manifests "
            "WHERE device_id = ? AND stream = ?) WHERE next > seq + 1"
        )
        missing = _ranges(db, f"SELECT seq + 1, next - 1 {gaps}", (device_id, name), limit)
        (missing_count,) = db.execute(
            f"SELECT COALESCE(SUM(next - seq - 1), 0) {gaps}",
            (device_id, name),
        ).fetchone()
        not_uploaded = _runs(
            db,
            "SELECT m.seq FROM evidence_manifests m LEFT JOIN evidence_segments s "
            "ON s.device_id = m.device_id AND s.stream = m.stream AND s.seq = m.seq "
            "WHERE m.device_id = ? AND m.stream = ? AND s.seq IS NULL ORDER BY m.seq",
            (device_id, name),
            limit,
        )
        summaries.append(
            {
                "stream": name,
                "kind": kind,
                "first_seq": first,
                "last_seq": last,
                "known": known,
                "announced": announced,
                "uploaded": uploaded,
                "missing_count": missing_count,
                "missing": [list(r) for r in missing],
                "not_uploaded": [list(r) for r in not_uploaded],
            }
        )
    return summaries


def _ranges(
    db: sqlite3.Connection, sql: str, params: tuple[Any, ...], limit: int
) -> list[tuple[int, int]]:
    return [(row[0], row[1]) for row in db.execute(f"{sql} LIMIT {int(limit)}", params)]


def _runs(
    db: sqlite3.Connection, sql: str, params: tuple[Any, ...], limit: int
) -> list[tuple[int, int]]:
    """Consecutive seqs of a query, folded into ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for (seq,) in db.execute(sql, params):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        elif len(runs) == limit:
            break
        else:
            runs.append((seq, seq))
    return runs
