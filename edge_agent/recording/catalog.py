"""The spool catalog: one SQLite file in the spool directory, one row per segment.

WAL with ``synchronous=FULL``: a committed row survives a power cut. The row is inserted (state
``writing``) before the segment's file is created, so recovery always knows what a ``.part`` file
is; seqs are allocated per stream and never reused (``streams.last_seq`` keeps the highest ever
allocated, even after rows are pruned some day).

The states and the table are in ``catalog_schema.py``, the row types in ``segments.py`` (both
re-exported here).

One connection serialised by a lock, so any thread may call; the recorder calls from its worker
threads, never with a long transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.recording.catalog_schema import ALLOWED_FROM, MIGRATIONS, SegmentState, migrate
from edge_agent.recording.errors import SpoolError, SpoolStateError
from edge_agent.recording.segments import SegmentOpening, SpooledSegment
from protocol.clock import Clock
from protocol.recording import SignedManifest

log = logging.getLogger(__name__)


class SpoolCatalog:
    def __init__(self, connection: sqlite3.Connection, lock_fd: int, root: Path, clock: Clock):
        self._db = connection
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self._clock = clock
        self.root = root
        """The spool directory: segment paths are relative to it."""

    @classmethod
    def open(cls, root: Path, clock: Clock, filename: str = "catalog.sqlite3") -> SpoolCatalog:
        path = root / filename
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot open spool {root}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise SpoolError(f"{path} is in use by another agent process") from None
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=5000")
            migrate(connection)
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise SpoolError(f"cannot open spool catalog {path}: {exc}") from exc
        return cls(connection, lock_fd, root, clock)

    def close(self) -> None:
        with self._mutex:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)

    # --- the recorder's side ------------------------------------------------------------------

    def last_seqs(self) -> dict[str, int]:
        rows = self._query("SELECT stream, last_seq FROM streams")
        return {row["stream"]: int(row["last_seq"]) for row in rows}

    def chain_head(self, stream: str) -> str | None:
        """sha256 of the stream's newest signed manifest (the next ``prev_manifest_sha256``)."""
        rows = self._query("SELECT last_manifest_sha256 FROM streams WHERE stream=?", (stream,))
        return rows[0]["last_manifest_sha256"] if rows else None

    def begin(self, opening: SegmentOpening) -> None:
        now = self._now()
        with self._transaction() as db:
            db.execute(
                """INSERT INTO streams (stream, kind, last_seq) VALUES (?, ?, ?)
                   ON CONFLICT (stream)
                   DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)""",
                (opening.stream, opening.kind.value, opening.seq),
            )
            db.execute(
                """INSERT INTO segments (stream, seq, kind, codec, container, recording_id,
                       boot_id, path, state, start_mono, start_at, clock_synced, pre_roll_s,
                       created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'writing', ?, ?, ?, ?, ?)""",
                (
                    opening.stream,
                    opening.seq,
                    opening.kind.value,
                    opening.codec,
                    opening.container,
                    str(opening.recording_id),
                    str(opening.boot_id),
                    opening.path,
                    opening.start_mono,
                    opening.start_at.isoformat(),
                    int(opening.clock_synced),
                    opening.pre_roll_s,
                    now,
                ),
            )

    def mark_closed(
        self,
        stream: str,
        seq: int,
        *,
        size: int,
        sha256: str,
        end_mono: float,
        end_at: datetime,
        partial: bool = False,
    ) -> None:
        self._transition(
            stream,
            seq,
            SegmentState.CLOSED,
            partial=int(partial),
            size=size,
            sha256=sha256,
            end_mono=end_mono,
            end_at=end_at.isoformat(),
            closed_at=self._now(),
        )

    def mark_recorded(self, signed: SignedManifest) -> None:
        """Store the signed manifest (its facts become the row's) and advance the chain head."""
        manifest = signed.parsed()
        with self._transaction() as db:
            self._transition_in(
                db,
                manifest.stream,
                manifest.seq,
                SegmentState.RECORDED,
                size=manifest.size,
                sha256=manifest.sha256,
                end_mono=manifest.end_mono,
                end_at=manifest.end_at.isoformat(),
                alarm=int(manifest.alarm),
                partial=int(manifest.partial),
                manifest=signed.model_dump_json(),
                manifest_sha256=signed.manifest_sha256,
                recorded_at=self._now(),
            )
            db.execute(
                "UPDATE streams SET last_manifest_sha256=? WHERE stream=?",
                (signed.manifest_sha256, manifest.stream),
            )

    def mark_announced(self, stream: str, seq: int) -> None:
        """Idempotent: a segment already past ``announced`` stays where it is."""
        current = self.get(stream, seq)
        if current is not None and current.state is not SegmentState.RECORDED:
            return
        self._transition(stream, seq, SegmentState.ANNOUNCED, announced_at=self._now())

    def unfinished(self) -> list[SpooledSegment]:
        """``writing`` and ``closed`` rows (left by a crash), per stream in seq order."""
        return self._segments("state IN ('writing', 'closed') ORDER BY stream, seq")

    def unannounced(self) -> list[SpooledSegment]:
        return self._segments("state = 'recorded' ORDER BY stream, seq")

    # --- the uploader's and the disk policy's side ----------------------------------------------

    def pending_uploads(self, limit: int = 100) -> list[SpooledSegment]:
        """Announced segments to upload: alarm-related first, then oldest first."""
        return self._segments(
            "state = 'announced' ORDER BY alarm DESC, start_mono, stream, seq LIMIT ?", (limit,)
        )

    def unreceipted(self, limit: int = 100) -> list[SpooledSegment]:
        """What the uploader works on: announced segments and uploaded ones still without a
        verified receipt; alarm-related first, then oldest first. "Oldest" is rowid order (the
        order segments were begun): monotonic time restarts at every boot and wall time may
        step, but rows are only ever appended."""
        return self._segments(
            "state IN ('announced', 'uploaded') ORDER BY alarm DESC, rowid LIMIT ?", (limit,)
        )

    def set_upload_url(self, stream: str, seq: int, url: str | None) -> None:
        """Remember the tus upload's URL so an interrupted upload resumes (``HEAD`` offset);
        ``None`` forgets it (the upload is gone at the collector: the next attempt creates one)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE segments SET upload_url=? WHERE stream=? AND seq=?", (url, stream, seq)
            )

    def mark_uploaded(self, stream: str, seq: int) -> None:
        self._transition(stream, seq, SegmentState.UPLOADED, uploaded_at=self._now())

    def mark_receipted(self, stream: str, seq: int, receipt_json: str) -> None:
        self._transition(
            stream, seq, SegmentState.RECEIPTED, receipt=receipt_json, receipted_at=self._now()
        )

    def deletable(self, limit: int = 100) -> list[SpooledSegment]:
        """Receipted segments, oldest first: the only ones that may be deleted. Oldest is rowid
        order (the order segments were begun), as in :meth:`unreceipted`: ``start_mono`` starts
        again at every boot."""
        return self._segments("state = 'receipted' ORDER BY rowid LIMIT ?", (limit,))

    def mark_deleted(self, stream: str, seq: int, reason: str) -> None:
        """Only from ``receipted``: unuploaded evidence is never deleted (SpoolStateError)."""
        self._transition(
            stream, seq, SegmentState.DELETED, delete_reason=reason, deleted_at=self._now()
        )

    def mark_corrupt(self, stream: str, seq: int) -> None:
        self._transition(stream, seq, SegmentState.CORRUPT)

    def receipted_before(self, cutoff: datetime, limit: int = 100) -> list[SpooledSegment]:
        """Receipted segments that started before ``cutoff`` (wall time), oldest first: local
        retention (wall time, so it holds across reboots, where ``start_mono`` starts again)."""
        return self._segments(
            "state = 'receipted' AND start_at < ? ORDER BY start_at, stream, seq LIMIT ?",
            (cutoff.isoformat(), limit),
        )

    def backlog(self) -> tuple[int, int, datetime | None]:
        """Sealed segments without a receipt yet (``closed`` … ``uploaded``): how many, their
        bytes, and the wall time the oldest of them started (for the heartbeat)."""
        rows = self._query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes, MIN(start_at) AS oldest"
            " FROM segments WHERE state IN ('closed', 'recorded', 'announced', 'uploaded')"
        )
        oldest = rows[0]["oldest"]
        return (
            int(rows[0]["n"]),
            int(rows[0]["bytes"]),
            None if oldest is None else datetime.fromisoformat(oldest),
        )

    def count(self, state: SegmentState) -> int:
        """How many segments are in ``state`` (indexed: cheap enough for every heartbeat)."""
        rows = self._query("SELECT COUNT(*) AS n FROM segments WHERE state = ?", (state.value,))
        return int(rows[0]["n"])

    def recent_rate(self, stream: str, samples: int = 20) -> tuple[int, float]:
        """(bytes, seconds) of the stream's newest ``samples`` complete segments: what recording
        this stream costs on disk, measured."""
        rows = self._query(
            "SELECT COALESCE(SUM(size), 0) AS bytes, COALESCE(SUM(end_mono - start_mono), 0) AS s"
            " FROM (SELECT size, start_mono, end_mono FROM segments"
            "       WHERE stream = ? AND partial = 0 AND size IS NOT NULL"
            "         AND end_mono > start_mono ORDER BY seq DESC LIMIT ?)",
            (stream, samples),
        )
        return int(rows[0]["bytes"]), float(rows[0]["s"])

    def get(self, stream: str, seq: int) -> SpooledSegment | None:
        found = self._segments("stream=? AND seq=?", (stream, seq))
        return found[0] if found else None

    def segments(self, stream: str | None = None) -> list[SpooledSegment]:
        if stream is None:
            return self._segments("1 ORDER BY stream, seq")
        return self._segments("stream=? ORDER BY seq", (stream,))

    def usage(self) -> dict[SegmentState, tuple[int, int]]:
        """Per state: (segments, bytes)."""
        rows = self._query(
            "SELECT state, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes"
            " FROM segments GROUP BY state"
        )
        return {SegmentState(r["state"]): (int(r["n"]), int(r["bytes"])) for r in rows}

    def file_path(self, segment: SpooledSegment) -> Path:
        return self.root / segment.path

    # --- internals --------------------------------------------------------------------------

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _segments(self, where: str, params: tuple[Any, ...] = ()) -> list[SpooledSegment]:
        return [
            SpooledSegment.from_row(row)
            for row in self._query(f"SELECT * FROM segments WHERE {where}", params)  # noqa: S608
        ]

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"spool catalog query failed: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise SpoolError(f"spool catalog write failed: {exc}") from exc

    def _transition(self, stream: str, seq: int, to: SegmentState, **fields: Any) -> None:
        with self._transaction() as db:
            self._transition_in(db, stream, seq, to, **fields)

    def _transition_in(
        self, db: sqlite3.Connection, stream: str, seq: int, to: SegmentState, **fields: Any
    ) -> None:
        allowed = ALLOWED_FROM[to]
        assignments = ", ".join(f"{name}=?" for name in ("state", *fields))
        marks = ", ".join("?" for _ in allowed)
        cursor = db.execute(
            f"UPDATE segments SET {assignments} WHERE stream=? AND seq=? AND state IN ({marks})",  # noqa: S608
            (to.value, *fields.values(), stream, seq, *(s.value for s in allowed)),
        )
        if cursor.rowcount == 0:
            row = db.execute(
                "SELECT state FROM segments WHERE stream=? AND seq=?", (stream, seq)
            ).fetchone()
            where = "missing" if row is None else row["state"]
            raise SpoolStateError(f"segment {stream}/{seq} cannot become {to.value} from {where}")


__all__ = ["MIGRATIONS", "SegmentOpening", "SegmentState", "SpoolCatalog", "SpooledSegment"]
