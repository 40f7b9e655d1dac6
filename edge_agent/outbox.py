"""The durable outbox: every event is committed here, with its seq, before anything is sent.

SQLite in WAL mode with ``synchronous=FULL``: a committed event survives a power cut. Rows are
marked delivered only against the collector's application ack, never against a broker PUBACK. The
seq is per device and never reused, even after delivered rows are pruned.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from protocol.clock import Clock
from protocol.messages import EventEnvelope, OutboxStats, encode
from protocol.migrations import migrate

log = logging.getLogger(__name__)

_MIGRATIONS = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        alarm INTEGER NOT NULL,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX events_pending ON events (alarm DESC, seq) WHERE delivered_at IS NULL;
    """,
)


class OutboxError(Exception):
    """The outbox cannot be used (wrong device, locked by another agent, disk trouble)."""


@dataclass(frozen=True)
class PendingEvent:
    seq: int
    alarm: bool
    payload: bytes


@dataclass(frozen=True)
class BootRecord:
    boot_no: int
    previous_shutdown: Literal["clean", "unclean", "first"]
    unclean_restarts: int
    """How many starts of this device followed an unclean end (crash, power cut, kill)."""


class Outbox:
    """One writer: the agent's event loop. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, connection: sqlite3.Connection, lock_fd: int, clock: Clock) -> None:
        self._db = connection
        self._lock_fd = lock_fd
        self._clock = clock
        self._last_seq = int(self._meta("last_seq", "0"))
        self._acked_seq = int(self._meta("acked_seq", "0"))
        depth, alarms = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(alarm), 0) FROM events WHERE delivered_at IS NULL"
        ).fetchone()
        self._depth = int(depth)
        self._alarm_depth = int(alarms)

    @classmethod
    def open(cls, path: Path, device_id: str, clock: Clock) -> Outbox:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise OutboxError(f"{path} is in use by another agent process") from None
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=5000")
            _migrate(connection)
            owner = connection.execute("SELECT value FROM meta WHERE key='device_id'").fetchone()
            if owner is None:
                connection.execute("INSERT INTO meta VALUES ('device_id', ?)", (device_id,))
            elif owner[0] != device_id:
                connection.close()
                raise OutboxError(f"{path} belongs to device {owner[0]!r}, not {device_id!r}")
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        except OutboxError:
            os.close(lock_fd)
            raise
        return cls(connection, lock_fd, clock)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # --- boots --------------------------------------------------------------------------------

    def start_boot(self) -> BootRecord:
        """Count this start, and tell whether the previous run ended cleanly."""
        with self._transaction():
            boot_no = int(self._meta("boot_no", "0")) + 1
            state = self._meta("running", "")
            previous: Literal["clean", "unclean", "first"] = (
                "first" if boot_no == 1 else "unclean" if state == "1" else "clean"
            )
            unclean = int(self._meta("unclean_restarts", "0")) + (previous == "unclean")
            self._set_meta("boot_no", str(boot_no))
            self._set_meta("running", "1")
            self._set_meta("unclean_restarts", str(unclean))
        return BootRecord(boot_no, previous, unclean)

    def mark_clean_shutdown(self) -> None:
        with self._transaction():
            self._set_meta("running", "0")

    # --- events -------------------------------------------------------------------------------

    def append(self, build: Callable[[int], EventEnvelope]) -> EventEnvelope:
        """Assign the next seq, build the envelope with it, commit. Returns only once durable."""
        seq = self._last_seq + 1
        envelope = build(seq)
        if envelope.seq != seq:
            raise ValueError("the envelope must carry the seq it was built with")
        with self._transaction():
            self._db.execute(
                "INSERT INTO events (seq, alarm, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    seq,
                    int(envelope.is_alarm),
                    envelope.body.type,
                    encode(envelope),
                    _iso(self._clock.now()),
                ),
            )
            self._set_meta("last_seq", str(seq))
        self._last_seq = seq
        self._depth += 1
        self._alarm_depth += int(envelope.is_alarm)
        return envelope

    def pending(
        self, limit: int, *, exclude: Collection[int] = (), alarms_only: bool = False
    ) -> list[PendingEvent]:
        """Undelivered events, alarms first then by seq, skipping ``exclude`` (in flight)."""
        if limit <= 0:
            return []
        where = "delivered_at IS NULL" + (" AND alarm = 1" if alarms_only else "")
        rows = self._db.execute(
            f"SELECT seq, alarm, payload FROM events WHERE {where} "  # noqa: S608
            "ORDER BY alarm DESC, seq LIMIT ?",
            (limit + len(exclude),),
        ).fetchall()
        picked = [
            PendingEvent(seq, bool(alarm), bytes(payload))
            for seq, alarm, payload in rows
            if seq not in exclude
        ]
        return picked[:limit]

    def pending_after(self, after: int, limit: int) -> list[PendingEvent]:
        """Undelivered non-alarm events with a seq above ``after``, in order (the sender's
        cursor: rows in flight are not read again)."""
        if limit <= 0:
            return []
        rows = self._db.execute(
            "SELECT seq, payload FROM events WHERE delivered_at IS NULL AND alarm = 0 AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [PendingEvent(seq, False, bytes(payload)) for seq, payload in rows]

    def settle(self, upto: int, also: Iterable[int] = ()) -> int:
        """Mark delivered every seq ≤ ``upto`` and the listed ones; return how many changed."""
        upto = min(upto, self._last_seq)
        extra = sorted({seq for seq in also if upto < seq <= self._last_seq})
        now = _iso(self._clock.now())
        with self._transaction():
            # Everything up to the previous mark is delivered already: touch only what is new.
            settled = self._db.execute(
                "UPDATE events SET delivered_at = ? "
                "WHERE seq > ? AND seq <= ? AND delivered_at IS NULL RETURNING alarm",
                (now, self._acked_seq, upto),
            ).fetchall()
            count, alarms = len(settled), sum(int(alarm) for (alarm,) in settled)
            for seq in extra:
                row = self._db.execute(
                    "UPDATE events SET delivered_at = ? "
                    "WHERE delivered_at IS NULL AND seq = ? RETURNING alarm",
                    (now, seq),
                ).fetchone()
                if row is not None:
                    count += 1
                    alarms += int(row[0])
            if upto > self._acked_seq:
                self._set_meta("acked_seq", str(upto))
        self._acked_seq = max(self._acked_seq, upto)
        self._depth -= count
        self._alarm_depth -= alarms
        return count

    def prune_delivered(self, keep: timedelta) -> int:
        """Forget delivered rows older than ``keep``; the seq counter lives in ``meta``."""
        cutoff = _iso(self._clock.now() - keep)
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM events WHERE delivered_at IS NOT NULL AND delivered_at < ?", (cutoff,)
            )
        return cursor.rowcount

    # --- state --------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def acked_seq(self) -> int:
        return self._acked_seq

    @property
    def depth(self) -> int:
        return self._depth

    def stats(self) -> OutboxStats:
        oldest_age: float | None = None
        if self._depth:
            row = self._db.execute(
                "SELECT created_at FROM events WHERE delivered_at IS NULL ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is not None:
                age = (self._clock.now() - datetime.fromisoformat(row[0])).total_seconds()
                oldest_age = max(0.0, age)
        return OutboxStats(
            depth=self._depth,
            alarm_depth=self._alarm_depth,
            oldest_age_s=oldest_age,
            last_seq=self._last_seq,
            acked_seq=self._acked_seq,
        )

    # --- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox write failed: {exc}") from exc

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _migrate(connection: sqlite3.Connection) -> None:
    migrate(connection, _MIGRATIONS, name="outbox")
